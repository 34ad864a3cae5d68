"""`decide`: every rule, the precedence between them, and the threshold edges."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from service.domain.errors import InvalidPolicy
from service.domain.language import given_language
from service.domain.model import (
    Action,
    Author,
    Comment,
    Language,
    ModeratorReason,
    ReasonCode,
    Scores,
    SubScore,
)
from service.domain.policy import (
    AuthorRules,
    CampaignRule,
    FailureMode,
    FloodRule,
    LanguageMode,
    LanguageRules,
    LinkRules,
    Policy,
    RuleAction,
    SitePolicy,
    SubScoreThresholds,
    TermRules,
    Thresholds,
    decide,
)
from service.domain.rules import DecisionContext, NamedPattern, domain_in, link_domains

C = ReasonCode
BASE = SitePolicy(spam=Thresholds(0.4, 0.9), abuse=Thresholds(0.5, 0.8))
LOW = Scores(spam=0.01, abuse=0.02)


def words(*terms: str) -> tuple[NamedPattern, ...]:
    return tuple(NamedPattern(t, re.compile(rf"\b{re.escape(t)}\b")) for t in terms)


FULL = replace(
    BASE,
    terms=TermRules(block=words("buy pills"), hold=words("idiot")),
    links=LinkRules(
        max_links=2,
        block_domains=frozenset({"spam.example"}),
        allow_domains=frozenset({"herald.example"}),
        hold_first_time_author=True,
    ),
    authors=AuthorRules(
        trusted=frozenset({"editor"}), blocked=frozenset({"troll"}), premoderate_first=2
    ),
    flood=FloodRule(max_comments=3, window_seconds=60, action=RuleAction.REVIEW),
    campaign=CampaignRule(min_authors=4, window_seconds=600, action=RuleAction.REJECT),
)


def run(
    text: str = "a fine comment",
    *,
    author: str | None = "ann",
    scores: Scores | None = LOW,
    policy: SitePolicy = FULL,
    prior: int | None = 10,
    recent: int = 1,
    campaign: int = 1,
    normalized: str | None = None,
    language: Language | None = None,
) -> tuple[Action, list[ReasonCode | ModeratorReason]]:
    comment = Comment(id="c1", site_id="herald", text=text, author=Author(id=author))
    context = DecisionContext(
        normalized_text=normalized if normalized is not None else text.lower(),
        author_prior_comments=prior,
        author_recent_comments=recent,
        campaign_authors=campaign,
        language=language,
    )
    decision = decide(comment, scores, policy, context, model_version="m", policy_version="p")
    assert decision.final is (decision.action is not Action.REVIEW)
    return decision.action, [r.code for r in decision.reasons]


RULES = [
    # name, kwargs, action, reason codes (in order)
    ("nothing to see", {}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("blocked author", {"author": "troll"}, Action.REJECT, [C.BLOCKED_AUTHOR]),
    ("trusted author", {"author": "editor"}, Action.APPROVE, [C.TRUSTED_AUTHOR]),
    ("blocked term", {"text": "Buy pills now"}, Action.REJECT, [C.BLOCKED_TERM]),
    (
        "blocked term matched after normalisation",
        {"text": "b.u.y p1lls", "normalized": "buy pills"},
        Action.REJECT,
        [C.BLOCKED_TERM],
    ),
    ("held term", {"text": "what an idiot"}, Action.REVIEW, [C.HELD_TERM]),
    ("held term is whole-word", {"text": "idiotic idiots"}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("blocked domain", {"text": "see http://x.spam.example/a"}, Action.REJECT, [C.BLOCKED_DOMAIN]),
    (
        "allowed domain never counts",
        {"text": "http://herald.example http://a.herald.example http://www.herald.example"},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    (
        "too many links",
        {"text": "http://a.org http://b.org http://c.org"},
        Action.REVIEW,
        [C.TOO_MANY_LINKS],
    ),
    (
        "first-time author with a link",
        {"text": "see www.shop.example", "prior": 5 - 5},
        Action.REVIEW,
        [C.FIRST_TIME_AUTHOR_LINK, C.NEW_AUTHOR],
    ),
    (
        "anonymous author with a link",
        {"text": "see www.shop.example", "author": None, "prior": None},
        Action.REVIEW,
        [C.FIRST_TIME_AUTHOR_LINK],
    ),
    ("new author premoderated", {"prior": 1}, Action.REVIEW, [C.NEW_AUTHOR]),
    ("past premoderation", {"prior": 2}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("flood at the limit", {"recent": 3}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("flood over the limit", {"recent": 4}, Action.REVIEW, [C.FLOOD]),
    ("campaign below K", {"campaign": 3}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("campaign at K", {"campaign": 4}, Action.REJECT, [C.CAMPAIGN]),
    ("score reject", {"scores": Scores(0.95, 0.0)}, Action.REJECT, [C.SPAM_ABOVE_REJECT]),
    ("score review", {"scores": Scores(0.5, 0.0)}, Action.REVIEW, [C.SPAM_UNCERTAIN]),
    # precedence
    (
        "blocked term beats trusted author",
        {"author": "editor", "text": "buy pills"},
        Action.REJECT,
        [C.BLOCKED_TERM],
    ),
    (
        "campaign beats trusted author",
        {"author": "editor", "campaign": 9},
        Action.REJECT,
        [C.CAMPAIGN],
    ),
    (
        "trusted author beats a high score",
        {"author": "editor", "scores": Scores(0.99, 0.99)},
        Action.APPROVE,
        [C.TRUSTED_AUTHOR],
    ),
    (
        "trusted author beats hold rules",
        {"author": "editor", "text": "idiot", "prior": 0},
        Action.APPROVE,
        [C.TRUSTED_AUTHOR],
    ),
    (
        "blocked author beats trusted",
        {
            "author": "troll",
            "policy": replace(
                FULL,
                authors=AuthorRules(trusted=frozenset({"troll"}), blocked=frozenset({"troll"})),
            ),
        },
        Action.REJECT,
        [C.BLOCKED_AUTHOR],
    ),
    (
        "score reject beats hold rules",
        {"text": "idiot", "scores": Scores(0.0, 0.85)},
        Action.REJECT,
        [C.ABUSE_ABOVE_REJECT, C.HELD_TERM],
    ),
    (
        "rule reject reports the scores' story too",
        {"text": "buy pills", "scores": Scores(0.95, 0.6)},
        Action.REJECT,
        [C.BLOCKED_TERM, C.SPAM_ABOVE_REJECT, C.ABUSE_UNCERTAIN],
    ),
    (
        "holds and score doubts together",
        {"text": "idiot", "scores": Scores(0.5, 0.0)},
        Action.REVIEW,
        [C.HELD_TERM, C.SPAM_UNCERTAIN],
    ),
    (
        "flood set to reject",
        {"recent": 9, "policy": replace(FULL, flood=FloodRule(3, 60, RuleAction.REJECT))},
        Action.REJECT,
        [C.FLOOD],
    ),
    # scoring failures follow the site's failure policy, and say so
    ("scoring failed: review", {"scores": None}, Action.REVIEW, [C.SCORING_FAILED]),
    (
        "scoring failed: fail open",
        {"scores": None, "policy": replace(FULL, on_scoring_failure=FailureMode.APPROVE)},
        Action.APPROVE,
        [C.SCORING_FAILED],
    ),
    (
        "scoring failed open, but a hold rule holds",
        {
            "scores": None,
            "text": "idiot",
            "policy": replace(FULL, on_scoring_failure=FailureMode.APPROVE),
        },
        Action.REVIEW,
        [C.SCORING_FAILED, C.HELD_TERM],
    ),
    (
        "scoring failed, a reject rule still rejects",
        {"scores": None, "text": "buy pills"},
        Action.REJECT,
        [C.BLOCKED_TERM],
    ),
]


FRENCH = Language("fr", detected=True, confidence=0.99)
ENGLISH = Language("en", detected=True, confidence=0.97)


def languages(mode: LanguageMode, *supported: str) -> SitePolicy:
    return replace(FULL, languages=LanguageRules(frozenset(supported or {"en"}), mode))


LANGUAGE_RULES = [
    ("supported language: scored", {"language": ENGLISH}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    (
        "undetermined language counts as supported",
        {"language": Language("und", detected=True, confidence=0.3)},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    ("no language at all: scored", {"language": None}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    (
        "unsupported: review by default",
        {"language": FRENCH},
        Action.REVIEW,
        [C.UNSUPPORTED_LANGUAGE],
    ),
    (
        "unsupported: the scores are not used, a high one rejects nothing",
        {"language": FRENCH, "scores": Scores(0.99, 0.99)},
        Action.REVIEW,
        [C.UNSUPPORTED_LANGUAGE],
    ),
    (
        "unsupported: approve",
        {
            "language": FRENCH,
            "scores": Scores(0.99, 0.99),
            "policy": languages(LanguageMode.APPROVE),
        },
        Action.APPROVE,
        [C.UNSUPPORTED_LANGUAGE],
    ),
    (
        "unsupported approved, but a hold rule still holds",
        {"language": FRENCH, "text": "idiot", "policy": languages(LanguageMode.APPROVE)},
        Action.REVIEW,
        [C.UNSUPPORTED_LANGUAGE, C.HELD_TERM],
    ),
    (
        "unsupported: score it as any other",
        {"language": FRENCH, "scores": Scores(0.0, 0.85), "policy": languages(LanguageMode.SCORE)},
        Action.REJECT,
        [C.ABUSE_ABOVE_REJECT],
    ),
    (
        "unsupported and scored: a low score approves",
        {"language": FRENCH, "policy": languages(LanguageMode.SCORE)},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    (
        "a language the site lists is supported",
        {"language": FRENCH, "policy": languages(LanguageMode.REVIEW, "en", "fr")},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    (
        "a reject rule beats the unsupported language",
        {"language": FRENCH, "text": "buy pills", "policy": languages(LanguageMode.APPROVE)},
        Action.REJECT,
        [C.BLOCKED_TERM, C.UNSUPPORTED_LANGUAGE],
    ),
    (
        "a trusted author beats the unsupported language",
        {"language": FRENCH, "author": "editor"},
        Action.APPROVE,
        [C.TRUSTED_AUTHOR],
    ),
    (
        "unsupported language needs no scores: a scoring failure does not matter",
        {"language": FRENCH, "scores": None, "policy": languages(LanguageMode.APPROVE)},
        Action.APPROVE,
        [C.UNSUPPORTED_LANGUAGE],
    ),
    (
        "unsupported and scored, scoring failed: the failure policy",
        {"language": FRENCH, "scores": None, "policy": languages(LanguageMode.SCORE)},
        Action.REVIEW,
        [C.SCORING_FAILED],
    ),
]

SUB = replace(
    BASE,
    sub_scores={
        SubScore.THREAT: SubScoreThresholds(reject_at=0.8),
        SubScore.INSULT: SubScoreThresholds(approve_below=0.6, reject_at=0.95),
        SubScore.PROFANITY: SubScoreThresholds(approve_below=0.7),
    },
)


def subs(**values: float | None) -> Scores:
    return Scores(spam=0.01, abuse=0.02, **values)


SUB_SCORE_RULES = [
    ("no sub-scores: nothing to threshold", {"scores": LOW}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    (
        "None never triggers",
        {"scores": subs(threat=None, insult=None, profanity=None)},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    ("threat below", {"scores": subs(threat=0.799)}, Action.APPROVE, [C.BELOW_THRESHOLDS]),
    ("threat at reject_at", {"scores": subs(threat=0.8)}, Action.REJECT, [C.THREAT_ABOVE_REJECT]),
    ("insult between", {"scores": subs(insult=0.6)}, Action.REVIEW, [C.INSULT_UNCERTAIN]),
    ("insult at reject", {"scores": subs(insult=0.95)}, Action.REJECT, [C.INSULT_ABOVE_REJECT]),
    (
        "profanity: review only",
        {"scores": subs(profanity=1.0)},
        Action.REVIEW,
        [C.PROFANITY_UNCERTAIN],
    ),
    (
        "a sub-score without a threshold never triggers",
        {"scores": subs(severe_toxicity=1.0, identity_attack=1.0)},
        Action.APPROVE,
        [C.BELOW_THRESHOLDS],
    ),
    (
        "sub-score reject with the labels' doubts",
        {"scores": Scores(spam=0.5, abuse=0.6, threat=0.9, insult=0.7)},
        Action.REJECT,
        [C.THREAT_ABOVE_REJECT, C.SPAM_UNCERTAIN, C.ABUSE_UNCERTAIN, C.INSULT_UNCERTAIN],
    ),
    (
        "a trusted author beats a sub-score",
        {"scores": subs(threat=0.99), "author": "editor"},
        Action.APPROVE,
        [C.TRUSTED_AUTHOR],
    ),
    (
        "an unsupported language's sub-scores are not used either",
        {"scores": subs(threat=0.99), "language": FRENCH},
        Action.REVIEW,
        [C.UNSUPPORTED_LANGUAGE],
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "action", "codes"),
    [r[1:] for r in LANGUAGE_RULES],
    ids=[r[0] for r in LANGUAGE_RULES],
)
def test_unsupported_languages_follow_the_site_policy(
    kwargs: dict[str, object], action: Action, codes: list[ReasonCode]
) -> None:
    assert run(**kwargs) == (action, codes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "action", "codes"),
    [r[1:] for r in SUB_SCORE_RULES],
    ids=[r[0] for r in SUB_SCORE_RULES],
)
def test_abuse_sub_score_thresholds(
    kwargs: dict[str, object], action: Action, codes: list[ReasonCode]
) -> None:
    policy = replace(SUB, authors=FULL.authors)
    assert run(policy=policy, prior=None, **kwargs) == (action, codes)  # type: ignore[arg-type]


def test_the_decision_records_the_language_and_why_it_was_held() -> None:
    comment = Comment(id="c1", site_id="s1", text="Je ne suis pas d'accord.")
    decision = decide(
        comment,
        Scores(0.0, 0.9, threat=0.95),
        replace(BASE, sub_scores={SubScore.THREAT: SubScoreThresholds(reject_at=0.8)}),
        DecisionContext("je ne suis pas d'accord.", language=FRENCH),
        model_version="m",
        policy_version="p",
    )

    assert decision.language == FRENCH
    assert decision.scores.threat == 0.95  # recorded, though not used
    [reason] = decision.reasons
    assert reason.detail == (
        "language fr (detected, confidence 0.99) is not supported here (supported: en); "
        "the model's scores are not used and the site's policy is to review"
    )


def test_sub_score_details_name_the_score_and_the_threshold() -> None:
    comment = Comment(id="c1", site_id="s1", text="x")
    decision = decide(
        comment,
        Scores(0.0, 0.0, threat=0.9, insult=0.65),
        SUB,
        DecisionContext("x"),
        model_version="m",
        policy_version="p",
    )

    assert [(r.code, r.detail) for r in decision.reasons] == [
        (C.THREAT_ABOVE_REJECT, "threat score 0.900 >= reject threshold 0.800"),
        (
            C.INSULT_UNCERTAIN,
            "insult score 0.650 >= approve threshold 0.600 and < reject threshold 0.950",
        ),
    ]


@pytest.mark.parametrize(
    ("approve", "reject", "problem"),
    [
        (0.9, 0.5, "approve_below <= reject_at"),
        (None, 1.5, "from 0 to 1"),
        (-0.1, None, "from 0 to 1"),
    ],
)
def test_sub_score_thresholds_refuse_impossible_values(
    approve: float | None, reject: float | None, problem: str
) -> None:
    with pytest.raises(InvalidPolicy, match=problem):
        SubScoreThresholds(approve, reject)


@pytest.mark.parametrize(
    ("lang", "code"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-GB", "en"),
        ("pt_BR", "pt"),
        ("zh-Hant-TW", "zh"),
        (" fr ", "fr"),
        (None, None),
        ("", None),
        ("English", None),
        ("??", None),
        ("und", None),
        ("zxx", None),
    ],
)
def test_the_events_lang_is_read_as_its_primary_subtag(lang: str | None, code: str | None) -> None:
    language = given_language(lang)
    assert (language.code if language else None) == code
    assert language is None or language.detected is False


@pytest.mark.parametrize(
    ("kwargs", "action", "codes"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_rules_and_their_precedence(
    kwargs: dict[str, object], action: Action, codes: list[ReasonCode]
) -> None:
    assert run(**kwargs) == (action, codes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spam", "abuse", "action", "codes"),
    [
        (0.0, 0.0, Action.APPROVE, [C.BELOW_THRESHOLDS]),
        (0.399, 0.499, Action.APPROVE, [C.BELOW_THRESHOLDS]),
        (0.4, 0.0, Action.REVIEW, [C.SPAM_UNCERTAIN]),
        (0.0, 0.5, Action.REVIEW, [C.ABUSE_UNCERTAIN]),
        (0.6, 0.6, Action.REVIEW, [C.SPAM_UNCERTAIN, C.ABUSE_UNCERTAIN]),
        (0.9, 0.0, Action.REJECT, [C.SPAM_ABOVE_REJECT]),
        (0.0, 0.8, Action.REJECT, [C.ABUSE_ABOVE_REJECT]),
        (1.0, 1.0, Action.REJECT, [C.SPAM_ABOVE_REJECT, C.ABUSE_ABOVE_REJECT]),
        (0.95, 0.6, Action.REJECT, [C.SPAM_ABOVE_REJECT, C.ABUSE_UNCERTAIN]),
    ],
)
def test_threshold_edges(spam: float, abuse: float, action: Action, codes: list[C]) -> None:
    assert run(scores=Scores(spam, abuse), policy=BASE) == (action, codes)


def test_decision_carries_identity_versions_scores_and_human_details() -> None:
    comment = Comment(id="c1", site_id="s1", text="x")
    decision = decide(
        comment,
        Scores(0.0, 0.85),
        BASE,
        DecisionContext("x"),
        model_version="m-3",
        policy_version="p-7",
    )

    assert (decision.comment_id, decision.site_id) == ("c1", "s1")
    assert (decision.model_version, decision.policy_version) == ("m-3", "p-7")
    assert decision.decided_by == "auto"
    assert decision.reasons[0].detail == "abuse score 0.850 >= reject threshold 0.800"


def test_rule_details_name_the_term_the_domain_and_the_counts() -> None:
    comment = Comment("c", "s", "buy pills at http://spam.example", author=Author(id="ann"))
    context = DecisionContext("buy pills at http://spam.example", 0, 9, 5)
    decision = decide(comment, LOW, FULL, context, model_version="m", policy_version="p")

    details = {r.code: r.detail for r in decision.reasons}
    assert details[C.BLOCKED_TERM] == "blocked term 'buy pills'"
    assert details[C.BLOCKED_DOMAIN] == "link to spam.example (blocked domain spam.example)"
    assert details[C.CAMPAIGN] == "the same text from 5 authors within 600 s (limit 4)"
    assert details[C.FLOOD] == "9 comments from this author within 60 s (limit 3)"


@pytest.mark.parametrize(("approve", "reject"), [(0.9, 0.5), (-0.1, 0.5), (0.5, 1.5)])
def test_thresholds_refuse_an_impossible_order(approve: float, reject: float) -> None:
    with pytest.raises(InvalidPolicy, match="approve_below <= reject_at"):
        Thresholds(approve, reject)


def test_equal_thresholds_leave_no_review_band() -> None:
    policy = SitePolicy(Thresholds(0.5, 0.5), Thresholds(0.5, 0.5))

    assert run(scores=Scores(0.49, 0.0), policy=policy)[0] is Action.APPROVE
    assert run(scores=Scores(0.5, 0.0), policy=policy)[0] is Action.REJECT


def test_sites_without_an_override_get_the_defaults() -> None:
    policy = Policy("v", BASE, sites={"herald": FULL})

    assert policy.for_site("herald") is FULL
    assert policy.for_site("elsewhere") is BASE


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("see https://Shop.Example/x?y=1 and www.other.org.", ("shop.example", "other.org")),
        ("no links here, just a.b", ()),
        ("HTTP://WWW.EXAMPLE.COM", ("example.com",)),
        ("http://localhost:8080/", ()),
    ],
)
def test_link_domains(text: str, hosts: tuple[str, ...]) -> None:
    assert link_domains(text) == hosts


def test_domain_in_matches_subdomains_only_on_label_boundaries() -> None:
    listed = frozenset({"spam.example"})
    assert domain_in("a.b.spam.example", listed) == "spam.example"
    assert domain_in("notspam.example", listed) is None
