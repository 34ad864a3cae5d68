"""A bounded soak: comments at a fixed rate for three minutes; memory stays flat and the lag
returns to zero, with every comment decided exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.kafka_helpers import (
    BOOTSTRAP,
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    kcat_consume,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 300  # comments per second offered
SECONDS = 180
WARM_UP = 40  # seconds before the memory baseline: model, caches and buffers settle
RSS_GROWTH_BOUND_MB = 40.0  # after warm-up, over the rest of the run


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_memory_stays_flat_and_lag_returns_to_zero(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    service = ServiceProcess(
        topics.env() | {"MODERATION_MODEL_PATH": str(tiny_model)}, tmp_path / "service.log"
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    samples: list[tuple[float, float]] = []
    sent = 0
    try:

        async def consuming() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return any(e.get("event") == "consuming" for e in service.logs())

        await wait_until(consuming, 60, "the service to start consuming")
        await producer.start()
        start = time.monotonic()
        next_sample = start
        while (elapsed := time.monotonic() - start) < SECONDS:
            due = int(elapsed * RATE)
            while sent < due:
                doc = {
                    "id": f"s-{sent}",
                    "site_id": "herald",
                    "text": f"Comment number {sent} on the council's budget vote.",
                    "author": {"id": f"reader-{sent % 997}"},
                }
                await producer.send(
                    topics.comments, json.dumps(doc).encode(), key=f"herald:s-{sent}".encode()
                )
                sent += 1
            if time.monotonic() >= next_sample:
                assert service.proc.poll() is None, "the service exited"
                samples.append((elapsed, rss_mb(service.proc.pid)))
                next_sample += 5
            await asyncio.sleep(0.02)  # the offered rate's clock tick, not a wait for a result
        await producer.flush()
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments), 120, "the lag to reach zero"
        )
        samples.append((time.monotonic() - start, rss_mb(service.proc.pid)))
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        await producer.stop()
        service.ensure_dead()

    baseline = max(rss for t, rss in samples if t <= WARM_UP)
    later = [rss for t, rss in samples if t > WARM_UP]
    growth = max(later) - baseline
    assert growth < RSS_GROWTH_BOUND_MB, f"RSS grew {growth:.1f} MB after warm-up: {samples}"
    assert sent >= RATE * SECONDS * 0.99
    decided = Counter(
        json.loads(r["payload"])["comment_id"] for r in kcat_consume(topics.decisions)
    )
    assert len(decided) == sent
    assert set(decided.values()) == {1}
