from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.contracts.codec import Limits, SourceRecord, auto_event_id
from service.domain.model import Comment, Language, Scores, SubScore
from service.domain.policy import (
    AuthorRules,
    CampaignRule,
    FloodRule,
    LanguageMode,
    LanguageRules,
    Policy,
    RuleAction,
    SitePolicy,
    SubScoreThresholds,
    Thresholds,
)
from service.domain.review import Activity
from service.usecases.pipeline import OutputRecord, Pipeline, Topics, text_hash
from tests.fakes import FixedClock, KeywordClassifier, WordLanguageDetector
from tests.schemas import validate

TOPICS = Topics("in", "out", "dlq", "shadow")
SITE = SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))
POLICY = Policy("p-1", SITE)
CLOCK = FixedClock()


def record(offset: int, value: bytes | None, key: bytes | None = None) -> SourceRecord:
    return SourceRecord("in", 0, offset, 1_700_000_000_000, key, value)


def comment(cid: str, text: str, **extra: Any) -> bytes:
    return json.dumps({"id": cid, "site_id": "herald", "text": text, **extra}).encode()


def make(policy: Policy = POLICY) -> tuple[Pipeline, KeywordClassifier]:
    model = KeywordClassifier()
    return Pipeline(model, policy, CLOCK, TOPICS, Limits()), model


def docs(records: list[OutputRecord], topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records if r.topic == topic]


def test_each_valid_comment_gets_one_decision_on_the_decisions_topic() -> None:
    pipeline, model = make()
    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "Thanks for the article")),
            record(1, comment("b", "buy cheap pills")),
            record(2, comment("c", "you idiot")),
            record(3, comment("d", "maybe")),
        ]
    )

    out = docs(outcome.records, "out")
    assert [r.topic for r in outcome.records] == ["out"] * 4
    assert [(d["comment_id"], d["action"]) for d in out] == [
        ("a", "approve"),
        ("b", "reject"),
        ("c", "reject"),
        ("d", "review"),
    ]
    assert [r.key for r in outcome.records] == [b"herald:a", b"herald:b", b"herald:c", b"herald:d"]
    assert out[0]["event_id"] == auto_event_id("herald", "a")
    assert (out[0]["model_version"], out[0]["policy_version"]) == ("fake-1", "p-1")
    for doc in out:
        validate("decision.v1", doc)
    assert model.calls == [4]  # one scoring call for the batch
    assert outcome.actions == {"approve": 1, "reject": 2, "review": 1}
    assert [s.comment_id for s in outcome.stored] == ["a", "b", "c", "d"]


def test_invalid_records_go_to_the_dead_letter_topic_in_order() -> None:
    pipeline, _ = make()
    outcome = pipeline.process_batch(
        [
            record(0, b"{broken", key=b"k0"),
            record(1, comment("a", "fine")),
            record(2, json.dumps({"id": "x", "text": "no site"}).encode()),
        ]
    )

    assert [r.topic for r in outcome.records] == ["dlq", "out", "dlq"]
    dead = docs(outcome.records, "dlq")
    assert [(d["reason"], d["source"]["offset"]) for d in dead] == [
        ("invalid_json", 0),
        ("missing_field", 2),
    ]
    assert outcome.records[0].key == b"k0"
    assert outcome.dead_letters == {"invalid_json": 1, "missing_field": 1}


def test_a_reply_is_stored_with_its_parent_and_article_and_a_javascript_url_is_dead_lettered() -> (
    None
):
    pipeline, _ = make()
    article = {"thread_url": "https://herald.example/a", "thread_title": "<b>Budget</b>"}
    outcome = pipeline.process_batch(
        [
            record(0, comment("reply", "I agree", parent_id="top", **article)),
            record(1, comment("trap", "see this", thread_url="javascript:alert(1)")),
        ]
    )

    assert [r.topic for r in outcome.records] == ["out", "dlq"]
    (reply,) = outcome.stored
    assert (reply.parent_id, reply.thread_url, reply.thread_title) == (
        "top",
        "https://herald.example/a",
        "<b>Budget</b>",
    )
    (dead,) = docs(outcome.records, "dlq")
    assert dead["reason"] == "invalid_value"
    assert "thread_url" in dead["detail"]


def test_a_comment_that_breaks_the_model_gets_the_failure_policy_alone() -> None:
    pipeline, model = make()
    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "fine")),
            record(1, comment("b", "explode")),
            record(2, comment("c", "buy")),
        ]
    )

    out = docs(outcome.records, "out")
    assert [(d["comment_id"], d["action"]) for d in out] == [
        ("a", "approve"),
        ("b", "review"),
        ("c", "reject"),
    ]
    assert out[1]["reasons"][0]["code"] == "scoring_failed"
    assert model.calls == [3, 1, 1, 1]  # the batch failed, then one by one


def test_an_empty_batch_scores_nothing() -> None:
    pipeline, model = make()

    assert pipeline.process_batch([]).records == []
    assert model.calls == []


def campaign_policy(k: int = 3) -> Policy:
    return Policy("p", SitePolicy(SITE.spam, SITE.abuse, campaign=CampaignRule(k, 600)))


def test_a_campaign_is_rejected_from_the_kth_distinct_author_within_one_batch() -> None:
    pipeline, _ = make(campaign_policy(3))
    outcome = pipeline.process_batch(
        [
            record(n, comment(f"c{n}", f"Great deals at shop #{n}!", author={"id": f"u{n % 4}"}))
            for n in range(6)
        ]
    )

    actions = [(d["comment_id"], d["action"]) for d in docs(outcome.records, "out")]
    # authors u0, u1, u2 (3rd distinct: rejected), u3, then u0 and u1 again
    assert actions == [
        ("c0", "approve"),
        ("c1", "approve"),
        ("c2", "reject"),
        ("c3", "reject"),
        ("c4", "reject"),
        ("c5", "reject"),
    ]


def test_campaign_history_comes_from_the_store_and_respects_the_window() -> None:
    pipeline, _ = make(campaign_policy(3))
    digest = text_hash("great deals at shop!")
    now = CLOCK.now()
    activity = Activity(
        texts={
            digest: (
                ("author:old", now - timedelta(seconds=601)),  # outside the window
                ("author:x", now - timedelta(seconds=30)),
            )
        }
    )
    prepared = pipeline.prepare(
        [record(0, comment("c0", "Great deals at shop!", author={"id": "me"}))]
    )

    [decision] = docs(pipeline.finish(prepared, activity).records, "out")
    assert decision["action"] == "approve"  # me + x = 2 < 3

    activity = Activity(texts={digest: (("author:x", now), ("author:y", now))})
    [decision] = docs(pipeline.finish(prepared, activity).records, "out")
    assert decision["action"] == "reject"
    assert decision["reasons"][0]["code"] == "campaign"


def test_a_flood_counts_the_authors_recent_comments_from_store_and_batch() -> None:
    policy = Policy(
        "p", SitePolicy(SITE.spam, SITE.abuse, flood=FloodRule(3, 60, RuleAction.REVIEW))
    )
    pipeline, _ = make(policy)
    now = CLOCK.now()
    activity = Activity(recent={("herald", "ann"): (now - timedelta(seconds=10),)})
    prepared = pipeline.prepare(
        [record(n, comment(f"c{n}", f"hello {n}", author={"id": "ann"})) for n in range(3)]
    )

    out = docs(pipeline.finish(prepared, activity).records, "out")
    assert [d["action"] for d in out] == ["approve", "approve", "review"]  # 2, 3, 4 comments


def test_new_authors_are_premoderated_counting_their_stored_comments() -> None:
    policy = Policy(
        "p", SitePolicy(SITE.spam, SITE.abuse, authors=AuthorRules(premoderate_first=2))
    )
    pipeline, _ = make(policy)
    prepared = pipeline.prepare(
        [record(n, comment(f"c{n}", "hi", author={"id": "ann"})) for n in range(2)]
        + [record(2, comment("c2", "hi", author={"id": "bob"}))]
    )

    out = docs(pipeline.finish(prepared, Activity(prior={("herald", "ann"): 1})).records, "out")
    assert [d["action"] for d in out] == ["review", "approve", "review"]


def test_a_shadow_policy_decides_beside_the_live_one() -> None:
    strict = SitePolicy(Thresholds(0.01, 0.02), Thresholds(0.01, 0.02))
    policy = Policy("live-1", SITE, shadow={"herald": strict}, shadow_version="cand-2")
    pipeline, _ = make(policy)
    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "fine")),
            record(1, json.dumps({"id": "b", "site_id": "other", "text": "fine"}).encode()),
        ]
    )

    live = docs(outcome.records, "out")
    shadow = docs(outcome.records, "shadow")
    assert [(d["comment_id"], d["action"], d["policy_version"]) for d in live] == [
        ("a", "approve", "live-1"),
        ("b", "approve", "live-1"),
    ]
    assert [(d["comment_id"], d["action"], d["policy_version"]) for d in shadow] == [
        ("a", "reject", "cand-2")  # only the site with a candidate
    ]
    assert shadow[0]["event_id"] != live[0]["event_id"]
    assert outcome.shadow_actions == {"reject": 1}
    assert [s.comment_id for s in outcome.stored] == ["a", "b"]  # shadow decisions act on nothing


def test_a_new_policy_applies_from_the_next_batch() -> None:
    pipeline, _ = make()
    prepared = pipeline.prepare([record(0, comment("a", "maybe"))])
    pipeline.set_policy(Policy("p-2", SitePolicy(Thresholds(0.9, 0.95), SITE.abuse)))

    [first] = docs(pipeline.finish(prepared, Activity()).records, "out")
    [second] = docs(pipeline.process_batch([record(1, comment("b", "maybe"))]).records, "out")
    assert (first["action"], first["policy_version"]) == ("review", "p-1")
    assert (second["action"], second["policy_version"]) == ("approve", "p-2")


def test_the_store_is_asked_only_for_the_history_some_rule_reads() -> None:
    events = [record(0, comment("a", "hi", author={"id": "ann"}))]
    now = CLOCK.now()

    plain = make()[0].prepare(events).query(now)
    assert (plain.authors, plain.hashes) == ((), ())
    floods = (
        make(Policy("p", SitePolicy(SITE.spam, SITE.abuse, flood=FloodRule(3, 60))))[0]
        .prepare(events)
        .query(now)
    )
    assert (floods.authors, floods.hashes) == ((("herald", "ann"),), ())
    campaigns = make(campaign_policy())[0].prepare(events).query(now)
    assert campaigns.authors == ()
    assert campaigns.hashes == (text_hash("hi"),)


def test_texts_are_hashed_and_stored_hashed_only_while_some_policy_has_a_campaign_rule() -> None:
    events = [record(0, comment("a", "Thanks for the article"))]

    [plain] = make()[0].process_batch(events).stored
    assert plain.text_hash is None  # no rule reads it: not stored, nor indexed
    # a campaign rule on one site matches texts on every site, so every row is hashed
    other_site = Policy("p", SITE, sites={"gazette": campaign_policy().default})
    [hashed] = make(other_site)[0].process_batch(events).stored
    assert hashed.text_hash == text_hash("thanks for the article")


def test_a_swapped_model_decides_from_the_next_batch_and_is_named_on_its_decisions() -> None:
    pipeline, old = make()
    new = KeywordClassifier(version="fake-2")
    prepared = pipeline.prepare([record(0, comment("a", "hello"))])

    pipeline.set_classifier(new)  # while a batch is in hand
    first = pipeline.finish(prepared, Activity())
    second = pipeline.process_batch([record(1, comment("b", "hello"))])

    assert [d["model_version"] for d in docs(first.records, "out")] == ["fake-2"]
    assert [d["model_version"] for d in docs(second.records, "out")] == ["fake-2"]
    assert old.calls == []
    assert new.calls == [1, 1]
    assert pipeline.model_version == "fake-2"


def test_a_batch_is_scored_and_labelled_by_the_model_it_began_with() -> None:
    class SwappingClassifier(KeywordClassifier):
        """Swaps the pipeline's model while it scores, as the hot swap could."""

        target: Pipeline | None = None

        def score(self, comments: Sequence[Comment]) -> list[Scores]:
            if self.target is not None:
                self.target.set_classifier(KeywordClassifier(version="fake-3"))
            return super().score(comments)

    model = SwappingClassifier(version="fake-1")
    pipeline = Pipeline(model, POLICY, CLOCK, TOPICS, Limits())
    model.target = pipeline

    outcome = pipeline.process_batch([record(0, comment("a", "hi")), record(1, comment("b", "x"))])

    assert {d["model_version"] for d in docs(outcome.records, "out")} == {"fake-1"}
    assert pipeline.model_version == "fake-3"


def test_a_candidate_model_in_shadow_decides_every_comment_beside_the_live_one() -> None:
    live = KeywordClassifier(version="live-1")

    class Strict(KeywordClassifier):
        def score(self, comments: Sequence[Comment]) -> list[Scores]:
            return [Scores(spam=0.95, abuse=0.0) for _ in comments]

    candidate = Strict(version="candidate-7")
    pipeline = Pipeline(live, POLICY, CLOCK, TOPICS, Limits(), shadow_classifier=candidate)

    outcome = pipeline.process_batch([record(0, comment("a", "hello")), record(1, b"{")])

    [decision] = docs(outcome.records, "out")
    [shadow] = docs(outcome.records, "shadow")
    assert (decision["action"], decision["model_version"]) == ("approve", "live-1")
    assert (shadow["action"], shadow["model_version"]) == ("reject", "candidate-7")
    assert shadow["comment_id"] == "a"
    assert outcome.shadow_actions == {"reject": 1}
    assert pipeline.shadow_model_version == "candidate-7"


def test_synchronous_callers_skip_the_shadow_and_its_candidate_model() -> None:
    candidate = KeywordClassifier(version="candidate-7")
    policy = Policy("p-1", SITE, shadow={"herald": SITE}, shadow_version="s-1")
    pipeline = Pipeline(
        KeywordClassifier(), policy, CLOCK, TOPICS, Limits(), shadow_classifier=candidate
    )
    prepared = pipeline.prepare([record(0, comment("a", "hello"))])

    outcome = pipeline.finish(prepared, Activity(), with_shadow=False)

    assert [r.topic for r in outcome.records] == ["out"]
    assert candidate.calls == []


def test_languages_are_detected_once_per_batch_for_comments_without_a_usable_lang() -> None:
    detector = WordLanguageDetector()
    pipeline = Pipeline(
        KeywordClassifier(), POLICY, CLOCK, TOPICS, Limits(), language_detector=detector
    )

    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "Thanks for the article")),
            record(1, comment("b", "Merci pour cet article")),
            record(2, comment("c", "Merci pour cet article", lang="en-GB")),  # given: wins
            record(3, comment("d", "An English comment", lang="de")),
            record(4, comment("e", "lol")),
            record(5, comment("f", "Bonjour à tous", lang="French")),  # no tag: detected
            record(6, b"{"),
        ]
    )

    assert detector.calls == [["Thanks for the article", "Merci pour cet article", "lol",
                               "Bonjour à tous"]]  # fmt: skip
    out = {d["comment_id"]: d for d in docs(outcome.records, "out")}
    for doc in out.values():
        validate("decision.v1", doc)
    assert {k: (d["language"]["code"], d["language"]["detected"]) for k, d in out.items()} == {
        "a": ("en", True),
        "b": ("fr", True),
        "c": ("en", False),
        "d": ("de", False),
        "e": ("und", True),
        "f": ("fr", True),
    }
    assert {k: d["action"] for k, d in out.items()} == {
        "a": "approve",
        "b": "review",
        "c": "approve",
        "d": "review",
        "e": "approve",
        "f": "review",
    }
    assert [r["code"] for r in out["b"]["reasons"]] == ["unsupported_language"]
    assert [s.language for s in outcome.stored][:2] == [
        Language("en", detected=True, confidence=0.95),
        Language("fr", detected=True, confidence=0.99),
    ]


def test_each_site_says_which_languages_it_supports() -> None:
    french_site = SitePolicy(
        Thresholds(0.5, 0.9),
        Thresholds(0.5, 0.9),
        languages=LanguageRules(frozenset({"en", "fr"}), LanguageMode.REVIEW),
    )
    scored = replace(SITE, languages=LanguageRules(on_unsupported=LanguageMode.SCORE))
    policy = Policy("p-1", SITE, sites={"paris": french_site, "scored": scored})
    pipeline = Pipeline(
        KeywordClassifier(),
        policy,
        CLOCK,
        TOPICS,
        Limits(),
        language_detector=WordLanguageDetector(),
    )
    events = [
        json.dumps({"id": site, "site_id": site, "text": "Merci, idiot"}).encode()
        for site in ("herald", "paris", "scored")
    ]

    outcome = pipeline.process_batch([record(i, e) for i, e in enumerate(events)])

    out = {
        d["site_id"]: (d["action"], d["reasons"][0]["code"]) for d in docs(outcome.records, "out")
    }
    assert out == {
        "herald": ("review", "unsupported_language"),
        "paris": ("reject", "abuse_above_reject_threshold"),
        "scored": ("reject", "abuse_above_reject_threshold"),
    }


def test_a_failing_detector_leaves_the_language_unknown_and_the_batch_scored() -> None:
    detector = WordLanguageDetector()
    pipeline = Pipeline(
        KeywordClassifier(), POLICY, CLOCK, TOPICS, Limits(), language_detector=detector
    )

    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "kaboom, merci")),
            record(1, comment("b", "merci", lang="fr")),
        ]
    )

    a, b = docs(outcome.records, "out")
    assert (a["action"], "language" in a) == ("approve", False)
    assert (b["action"], b["language"]) == ("review", {"code": "fr", "detected": False})


def test_without_a_detector_only_the_events_lang_counts() -> None:
    pipeline, _ = make()

    outcome = pipeline.process_batch(
        [record(0, comment("a", "merci beaucoup")), record(1, comment("b", "hi", lang="es"))]
    )

    a, b = docs(outcome.records, "out")
    assert (a["action"], "language" in a) == ("approve", False)
    assert (b["action"], b["reasons"][0]["code"]) == ("review", "unsupported_language")


class SubScoring(KeywordClassifier):
    """Keyword scores plus a threat sub-score: 0.9 for 'hurt', `bad` for 'broken'."""

    bad: float = float("nan")

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        base = super().score(comments)
        return [
            replace(
                s,
                threat=0.9 if "hurt" in c.text else self.bad if "broken" in c.text else 0.05,
                insult=None,
            )
            for s, c in zip(base, comments, strict=True)
        ]


def test_sub_scores_reach_the_event_and_the_policy_thresholds_them() -> None:
    site = replace(SITE, sub_scores={SubScore.THREAT: SubScoreThresholds(reject_at=0.8)})
    pipeline = Pipeline(SubScoring(), Policy("p-1", site), CLOCK, TOPICS, Limits())

    outcome = pipeline.process_batch(
        [record(0, comment("a", "I will hurt you")), record(1, comment("b", "nice"))]
    )

    a, b = docs(outcome.records, "out")
    for doc in (a, b):
        validate("decision.v1", doc)
    assert (a["action"], a["reasons"][0]["code"]) == ("reject", "threat_above_reject_threshold")
    assert a["scores"] == {"spam": 0.01, "abuse": 0.02, "threat": 0.9}
    assert (b["action"], b["scores"]["threat"]) == ("approve", 0.05)
    assert outcome.stored[0].scores.threat == 0.9


def test_an_invalid_sub_score_is_a_scoring_failure_of_that_comment_only() -> None:
    for bad in (float("nan"), 1.5, -0.1):
        model = SubScoring()
        model.bad = bad
        pipeline = Pipeline(model, POLICY, CLOCK, TOPICS, Limits())

        outcome = pipeline.process_batch(
            [record(0, comment("a", "broken")), record(1, comment("b", "fine"))]
        )

        a, b = docs(outcome.records, "out")
        assert (a["action"], a["reasons"][0]["code"]) == ("review", "scoring_failed"), bad
        assert b["action"] == "approve"
        assert outcome.scoring_failures == 1


@dataclass
class Prenormalizing(KeywordClassifier):
    """Takes the pipeline's normalised texts when they were normalised its way."""

    given: list[list[str]] = field(default_factory=list)

    @property
    def normalizer(self) -> Callable[[str], str]:
        return str.upper

    def score_normalized(
        self, comments: Sequence[Comment], normalized: Sequence[str]
    ) -> list[Scores]:
        self.given.append(list(normalized))
        return self.score(comments)


def test_texts_are_normalised_once_for_a_classifier_that_normalises_the_same_way() -> None:
    model = Prenormalizing()
    pipeline = Pipeline(model, POLICY, CLOCK, TOPICS, Limits(), normalize=str.upper)

    pipeline.process_batch(
        [record(0, comment("c1", "buy now")), record(1, b"{"), record(2, comment("c2", "ok"))]
    )

    assert model.given == [["BUY NOW", "OK"]]
    assert model.calls == [2]


def test_a_classifier_that_normalises_otherwise_gets_the_raw_texts_only() -> None:
    model = Prenormalizing()
    pipeline = Pipeline(model, POLICY, CLOCK, TOPICS, Limits(), normalize=str.casefold)

    outcome = pipeline.process_batch([record(0, comment("c1", "buy now"))])

    assert model.given == []
    assert model.calls == [1]
    assert outcome.actions == {"reject": 1}


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("ab_ z9.!\t\n\u00a0\u2028é-")))
def test_the_text_hash_is_of_the_letter_runs_one_space_apart(normalized: str) -> None:
    # the definition: every character but a-z, _ and space is a space, spaces collapse
    skeleton = re.sub(r"\s+", " ", re.sub(r"[^a-z_ ]+", " ", normalized)).strip()

    assert text_hash(normalized) == hashlib.sha256(skeleton.encode()).hexdigest()[:32]
