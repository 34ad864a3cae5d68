"""`decide`: every rule, the precedence between them, and the threshold edges."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from service.domain.errors import InvalidPolicy
from service.domain.model import Action, Author, Comment, ModeratorReason, ReasonCode, Scores
from service.domain.policy import (
    AuthorRules,
    CampaignRule,
    FailureMode,
    FloodRule,
    LinkRules,
    Policy,
    RuleAction,
    SitePolicy,
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
) -> tuple[Action, list[ReasonCode | ModeratorReason]]:
    comment = Comment(id="c1", site_id="herald", text=text, author=Author(id=author))
    context = DecisionContext(
        normalized_text=normalized if normalized is not None else text.lower(),
        author_prior_comments=prior,
        author_recent_comments=recent,
        campaign_authors=campaign,
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
