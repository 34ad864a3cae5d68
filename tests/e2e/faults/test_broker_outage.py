"""Fault: the Kafka broker stops for 30 s in the middle of a 20,000-comment stream and starts
again; the service rides it out and no decision is lost or doubled."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.faults.fault_kit import (
    assert_exactly_once,
    kafka_stopped,
    make_stream,
    produce,
    progress,
    services,
)
from tests.kafka_helpers import KafkaTopics, ServiceProcess, all_consumed, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COMMENTS = 20_000
OUTAGE_SECONDS = 30.0


async def test_broker_stopped_for_30s_mid_stream_loses_and_doubles_nothing(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    stream = make_stream(COMMENTS)
    first, rest = stream.split(len(stream) * 4 // 5)
    produce(topics, first, tmp_path / "in-1")
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = topics.env() | {
        "MODERATION_MODEL_PATH": str(tiny_model),
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_BATCH_MAX_RECORDS": "100",
        "MODERATION_KAFKA_RETRY_MAX_SECONDS": "2",  # back soon after the broker is
        "MODERATION_INSTANCE_ID": "broker-outage",
    }
    with services() as started:
        service = ServiceProcess(env, tmp_path / "service.log")
        started.append(service)

        async def under_way() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return await progress(topics) >= 2_000

        await wait_until(under_way, 180, "the service to be under way")
        with kafka_stopped():
            down_at = time.monotonic()
            # The outage's own clock: the one place these tests wait for time, not a condition.
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                assert service.proc.poll() is None, "the service exited while Kafka was down"
                await asyncio.sleep(0.5)
                _, ready = await service.readiness()  # the API keeps answering
                assert ready["checks"]["store"] is True
        assert service.proc.poll() is None

        produce(topics, rest, tmp_path / "in-2")  # the stream goes on after the outage
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            240,
            "the service to finish the stream after the outage",
        )
        assert (await service.readiness())[0] == 200
        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0

    await assert_exactly_once(topics, stream, database_url)
