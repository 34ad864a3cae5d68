"""Fault: PostgreSQL, the review store, stops for 30 s in the middle of a 20,000-comment
stream. Consumption pauses without committing past anything not stored, readiness says the
store is down, and everything resumes, exactly once, when the database is back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database
from tests.e2e.faults.fault_kit import (
    assert_exactly_once,
    committed,
    make_stream,
    postgres_stopped,
    produce,
    progress,
    services,
)
from tests.kafka_helpers import KafkaTopics, ServiceProcess, all_consumed, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COMMENTS = 20_000
OUTAGE_SECONDS = 30.0


async def test_postgres_stopped_for_30s_pauses_consumption_and_resumes_exactly_once(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, postgres_url: str
) -> None:
    stream = make_stream(COMMENTS)
    first, rest = stream.split(len(stream) * 4 // 5)
    produce(topics, first, tmp_path / "in-1")
    with fresh_postgres_database(postgres_url) as database_url, services() as started:
        env = topics.env() | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_DATABASE_URL": database_url,
            "MODERATION_BATCH_MAX_RECORDS": "100",
            "MODERATION_KAFKA_RETRY_MAX_SECONDS": "2",
            "MODERATION_INSTANCE_ID": "pg-outage",
        }
        service = ServiceProcess(env, tmp_path / "service.log")
        started.append(service)

        async def under_way() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return await progress(topics) >= 2_000

        await wait_until(under_way, 180, "the service to be under way")
        with postgres_stopped():
            down_at = time.monotonic()

            async def store_not_ready() -> bool:
                assert service.proc.poll() is None, "the service exited while the store was down"
                status, body = await service.readiness()
                return status == 503 and body["checks"]["store"] is False

            await wait_until(store_not_ready, 60, "/readyz to report the store down")
            paused_at = await committed(topics)
            # The outage's own clock: the one place these tests wait for time, not a condition.
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                assert service.proc.poll() is None, "the service exited while the store was down"
                await asyncio.sleep(0.5)
            status, body = await service.readiness()
            assert (status, body["checks"]["store"]) == (503, False)
            # nothing committed while nothing could be stored
            assert await committed(topics) == paused_at
        assert service.proc.poll() is None

        produce(topics, rest, tmp_path / "in-2")  # the stream goes on after the outage
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            240,
            "the service to finish the stream once PostgreSQL is back",
        )

        async def ready() -> bool:
            return (await service.readiness())[0] == 200

        await wait_until(ready, 60, "/readyz to be 200 again")
        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0
        await assert_exactly_once(topics, stream, database_url)
