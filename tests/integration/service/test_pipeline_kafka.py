"""The pipeline against the real broker, with kcat as the outside producer and reader."""

from __future__ import annotations

import base64
import json
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.adapters.sql.store import SqlReviewStore
from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    consumed_count,
    headers_of,
    kcat_consume,
    kcat_produce,
    wait_until,
)
from tests.schemas import validate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SITES = ("herald", "tech-blog", "city.news")
TEXTS = (
    "Thanks for this article, very informative.",
    "Check out my channel and subscribe for free gift cards!!! http://spam.example",
    "You are an idiot and everyone here hates you.",
    "I disagree with the mayor, but the reporting here is fair.",
)

# One broken event per way of being wrong, with the reason the DLQ must name.
MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "invalid_json"),
    (b'["an array"]', "not_an_object"),
    (b'{"site_id": "herald", "text": "no id"}', "missing_field"),
    (b'{"id": "x", "text": "no site"}', "missing_field"),
    (b'{"id": "x", "site_id": "herald"}', "missing_field"),
    (b'{"id": 17, "site_id": "herald", "text": "numeric id"}', "wrong_type"),
    (b'{"id": "x", "site_id": "herald", "text": "\xff\xfe bad bytes"}', "invalid_utf8"),
    (b'{"id": "x", "site_id": "herald", "text": "' + b"a" * 20_001 + b'"}', "text_too_long"),
    (b'{"id": "x", "site_id": "herald", "text": "t", "created_at": "noon"}', "invalid_timestamp"),
    (
        b'{"schema": "moderation.comment.v9", "id": "x", "site_id": "herald", "text": "t"}',
        "unsupported_schema",
    ),
]


def valid_event(n: int) -> tuple[bytes, bytes, str]:
    site = SITES[n % len(SITES)]
    comment_id = f"c-{n:05d}"
    doc = {
        "id": comment_id,
        "site_id": site,
        "text": f"{TEXTS[n % len(TEXTS)]} (#{n})",
        "author": {"id": f"u{n % 37}", "name": "Reader"},
        "created_at": "2026-11-27T10:00:00Z",
        "cms_field": n,  # unknown fields are fine
    }
    return f"{site}:{comment_id}".encode(), json.dumps(doc).encode(), f"{site}:{comment_id}"


async def test_kcat_in_kcat_out_950_decisions_and_50_dead_letters(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    valid = [valid_event(n) for n in range(950)]
    expected = {ident for _, _, ident in valid}
    lines: list[tuple[bytes | None, bytes]] = [(key, value) for key, value, _ in valid]
    for i in range(50):  # 5 of each kind, spread through the stream
        lines.insert(i * 20, (b"bad-key", MALFORMED[i % len(MALFORMED)][0]))
    assert len(lines) == 1000
    kcat_produce(topics.comments, lines, tmp_path)

    service = ServiceProcess(
        topics.env() | {"MODERATION_MODEL_PATH": str(tiny_model)}, tmp_path / "service.log"
    )
    try:
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            120,
            "the service to commit past all 1,000 comments",
        )
        assert await service.readiness() == (
            200,
            {"status": "ok", "checks": {"model": True, "store": True, "kafka": True}},
        )
        metrics = await service.metrics()
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()

    decisions = kcat_consume(topics.decisions)
    docs = [json.loads(d["payload"]) for d in decisions]
    per_comment = Counter(f"{d['site_id']}:{d['comment_id']}" for d in docs)
    assert len(docs) == 950
    assert set(per_comment) == expected
    assert set(per_comment.values()) == {1}
    for envelope, doc in zip(decisions, docs, strict=True):
        validate("decision.v1", doc)
        assert envelope["key"] == f"{doc['site_id']}:{doc['comment_id']}"
    assert len({d["event_id"] for d in docs}) == 950
    assert {d["action"] for d in docs} <= {"approve", "reject", "review"}

    dead = kcat_consume(topics.dlq)
    assert len(dead) == 50
    reasons: Counter[str] = Counter()
    sent_bad = Counter(value for key, value in lines if key == b"bad-key")
    got_bad: Counter[bytes] = Counter()
    for envelope in dead:
        body = json.loads(envelope["payload"])
        validate("dead-letter.v1", body)
        header = headers_of(envelope)
        assert header["moderation.error.reason"] == body["reason"]
        assert header["moderation.error.detail"] == body["detail"][:1000]
        assert body["detail"]
        reasons[body["reason"]] += 1
        got_bad[base64.b64decode(body["value_base64"])] += 1
    assert got_bad == sent_bad  # every broken record kept byte for byte
    assert reasons == Counter(
        {"missing_field": 15} | {reason: 5 for _, reason in MALFORMED if reason != "missing_field"}
    )

    events = [entry.get("event") for entry in service.logs()]
    assert "stopped" in events
    # the metrics say what happened, exactly
    by_action = Counter(d["action"] for d in docs)
    assert metrics[("moderation_comments_consumed_total", ())] == 1000
    for action in ("approve", "reject", "review"):
        key = ("moderation_decisions_total", (("action", action), ("decided_by", "auto")))
        assert metrics[key] == by_action[action]
    for reason, count in reasons.items():
        assert metrics[("moderation_dead_letters_total", (("reason", reason),))] == count
    assert sum(v for k, v in metrics.items() if k[0] == "moderation_consumer_lag_records") == 0
    # every review decision is waiting in the store's queue, once
    reviews = {(d["site_id"], d["comment_id"]) for d in docs if d["action"] == "review"}
    assert await queued_items(service) == reviews


async def queued_items(service: ServiceProcess) -> set[tuple[str, str]]:
    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        page = await store.list_queue(None, now=datetime.now(UTC), limit=100_000)
    finally:
        await store.close()
    return {(item.site_id, item.comment_id) for item in page.items}


async def test_sigkill_mid_stream_never_loses_or_duplicates_a_decision(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    total = 3000
    events = [valid_event(n) for n in range(total)]
    kcat_produce(topics.comments, [(k, v) for k, v, _ in events], tmp_path)
    env = topics.env() | {
        "MODERATION_MODEL_PATH": str(tiny_model),
        "MODERATION_BATCH_MAX_RECORDS": "40",  # many small transactions to land a kill inside
        "MODERATION_INSTANCE_ID": "crash-test",
    }

    kills = 0
    progress_at_kill: list[int] = []
    for round_ in range(3):
        service = ServiceProcess(env, tmp_path / f"service-{round_}.log")
        try:
            if round_ < 2:
                floor = await consumed_count(topics.group_id, topics.comments)

                async def moved(floor: int = floor) -> bool:
                    return await consumed_count(topics.group_id, topics.comments) >= floor + 400

                await wait_until(moved, 120, "the service to make progress")
                service.signal(signal.SIGKILL)
                assert await service.wait(30) == -signal.SIGKILL
                kills += 1
                progress_at_kill.append(await consumed_count(topics.group_id, topics.comments))
            else:
                await wait_until(
                    lambda: all_consumed(topics.group_id, topics.comments),
                    180,
                    "the restarted service to finish the stream",
                )
                service.signal(signal.SIGTERM)
                assert await service.wait(30) == 0
        finally:
            service.ensure_dead()

    assert kills == 2
    assert all(0 < done < total for done in progress_at_kill)  # killed mid-stream
    docs = [json.loads(d["payload"]) for d in kcat_consume(topics.decisions)]
    per_comment = Counter(f"{d['site_id']}:{d['comment_id']}" for d in docs)
    assert set(per_comment) == {ident for _, _, ident in events}
    assert max(per_comment.values()) == 1
    assert kcat_consume(topics.dlq) == []
    reviews = {(d["site_id"], d["comment_id"]) for d in docs if d["action"] == "review"}
    assert await queued_items(service) == reviews
