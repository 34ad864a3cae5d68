"""Moderator decisions wait in the outbox while Kafka is down and all arrive once it is back. A
fault test: it stops and starts the local broker (deploy/kafka/kafka.sh), so it lives with the
others that do."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.adapters.kafka_support import create_topics
from service.adapters.outbox import OutboxRelay
from service.adapters.sql.store import SqlReviewStore
from service.contracts.codec import decision_key, encode_decision
from service.domain.model import Action, ModeratorReason
from service.domain.review import ModeratorDecision, OutboxDraft, moderator_decision
from tests.fakes import FixedClock
from tests.integration.service.test_review_store import stored
from tests.kafka_helpers import BOOTSTRAP, ROOT, kcat_consume, wait_until
from tests.schemas import validate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
KAFKA = [str(ROOT / "deploy" / "kafka" / "kafka.sh")]


def kafka(command: str) -> None:
    subprocess.run([*KAFKA, command], check=True, timeout=120, capture_output=True)


@pytest.fixture
async def broker_restored() -> AsyncIterator[None]:
    """Whatever the test does to the broker, it is running again afterwards."""
    yield
    kafka("start")


async def decide(store: SqlReviewStore, cid: str, topic: str) -> str:
    item = await store.get_item("herald", cid)
    verdict = ModeratorDecision("herald", cid, Action.REJECT, ModeratorReason.SPAM, None, "alice")
    event_id = str(uuid.uuid4())
    value = encode_decision(moderator_decision(item, verdict), event_id, datetime.now(UTC))
    await store.decide(
        verdict,
        OutboxDraft(event_id, topic, decision_key("herald", cid), value),
        now=datetime.now(UTC),
    )
    return event_id


async def test_decisions_made_while_kafka_is_down_are_published_when_it_returns(
    kafka_bootstrap: str, tmp_path: Path, broker_restored: None
) -> None:
    topic = f"decisions-outbox-{uuid.uuid4().hex[:12]}"
    await create_topics(BOOTSTRAP, [topic], partitions=1)
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    await store.migrate()
    await store.record_decisions([stored(f"c{n}") for n in range(6)])
    stop = asyncio.Event()
    relay = OutboxRelay(
        store, BOOTSTRAP, FixedClock(), stop, poll_seconds=0.1, retry_max_seconds=1.0
    )

    kafka("stop")
    relay_task = asyncio.create_task(relay.run())
    try:
        sent = [await decide(store, f"c{n}", topic) for n in range(6)]

        async def relay_retried_twice() -> bool:
            return relay.failures >= 2

        await wait_until(relay_retried_twice, 60, "the relay to fail against the stopped broker")
        assert [r.event_id for r in await store.outbox_pending(100)] == sent  # accepted, kept

        kafka("start")

        async def outbox_drained() -> bool:
            return not await store.outbox_pending(100)

        await wait_until(outbox_drained, 90, "the relay to publish once Kafka is back")
    finally:
        stop.set()
        await relay_task
        await store.close()

    records = kcat_consume(topic)
    docs = [json.loads(r["payload"]) for r in records]
    assert sorted(d["event_id"] for d in docs) == sorted(sent)
    for record, doc in zip(records, docs, strict=True):
        validate("decision.v1", doc)
        assert (doc["action"], doc["final"], doc["decided_by"]) == (
            "reject",
            True,
            "moderator:alice",
        )
        assert record["key"] == f"herald:{doc['comment_id']}"
