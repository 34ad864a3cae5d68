from __future__ import annotations

import json
from typing import Any

from service.adapters.codec import Limits, SourceRecord, auto_event_id
from service.domain.policy import Policy, Thresholds
from service.pipeline import OutputRecord, Pipeline, Topics
from tests.fakes import FixedClock, KeywordClassifier
from tests.schemas import validate

TOPICS = Topics("in", "out", "dlq")
POLICY = Policy("p-1", Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))


def record(offset: int, value: bytes | None, key: bytes | None = None) -> SourceRecord:
    return SourceRecord("in", 0, offset, 1_700_000_000_000, key, value)


def comment(cid: str, text: str, **extra: Any) -> bytes:
    return json.dumps({"id": cid, "site_id": "herald", "text": text, **extra}).encode()


def make(classifier: KeywordClassifier | None = None) -> tuple[Pipeline, KeywordClassifier]:
    model = classifier or KeywordClassifier()
    return Pipeline(model, POLICY, FixedClock(), TOPICS, Limits()), model


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

    docs = [json.loads(r.value) for r in outcome.records]
    assert [r.topic for r in outcome.records] == ["out"] * 4
    assert [(d["comment_id"], d["action"]) for d in docs] == [
        ("a", "approve"),
        ("b", "reject"),
        ("c", "reject"),
        ("d", "review"),
    ]
    assert [r.key for r in outcome.records] == [b"herald:a", b"herald:b", b"herald:c", b"herald:d"]
    assert docs[0]["event_id"] == auto_event_id("herald", "a")
    assert docs[0]["model_version"] == "fake-1"
    assert docs[0]["policy_version"] == "p-1"
    for doc in docs:
        validate("decision.v1", doc)
    assert model.calls == [4]  # one scoring call for the batch
    assert outcome.actions == {"approve": 1, "reject": 2, "review": 1}


def test_invalid_records_go_to_the_dead_letter_topic_and_do_not_stop_the_batch() -> None:
    pipeline, _ = make()
    outcome = pipeline.process_batch(
        [
            record(0, b"{broken", key=b"k0"),
            record(1, comment("a", "fine")),
            record(2, json.dumps({"id": "x", "text": "no site"}).encode()),
        ]
    )

    by_topic: dict[str, list[OutputRecord]] = {"out": [], "dlq": []}
    for r in outcome.records:
        by_topic[r.topic].append(r)
    assert [json.loads(r.value)["comment_id"] for r in by_topic["out"]] == ["a"]
    dead = [json.loads(r.value) for r in by_topic["dlq"]]
    assert [(d["reason"], d["source"]["offset"]) for d in dead] == [
        ("invalid_json", 0),
        ("missing_field", 2),
    ]
    assert by_topic["dlq"][0].key == b"k0"
    assert outcome.dead_letters == {"invalid_json": 1, "missing_field": 1}


def test_a_comment_that_breaks_the_model_is_dead_lettered_alone() -> None:
    pipeline, model = make()
    outcome = pipeline.process_batch(
        [
            record(0, comment("a", "fine")),
            record(1, comment("b", "explode")),
            record(2, comment("c", "buy")),
        ]
    )

    out = [(r.topic, json.loads(r.value)) for r in outcome.records]
    assert [(t, d.get("comment_id", d.get("reason"))) for t, d in out] == [
        ("out", "a"),
        ("dlq", "scoring_failed"),
        ("out", "c"),
    ]
    assert "model exploded" in out[1][1]["detail"]
    assert model.calls == [3, 1, 1, 1]  # the batch failed, then one by one


def test_an_empty_batch_scores_nothing() -> None:
    pipeline, model = make()

    assert pipeline.process_batch([]).records == []
    assert model.calls == []
