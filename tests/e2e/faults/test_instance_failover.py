"""Fault: two instances share one consumer group; one is SIGKILLed mid-stream. Its partitions
move to the survivor and every comment is still decided exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.faults.fault_kit import (
    assert_exactly_once,
    log_events,
    make_stream,
    produce,
    progress,
    published_decisions,
    services,
)
from tests.kafka_helpers import KafkaTopics, ServiceProcess, all_consumed, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COMMENTS = 20_000
PARTITIONS = 3


def assignment(service: ServiceProcess) -> set[str]:
    """The partitions the instance holds now, from each of its workers' latest assignment log
    line (aiokafka rebalances eagerly: each assignment is the whole of it)."""
    latest: dict[object, list[object]] = {}
    for event in log_events(service, "partitions assigned"):
        partitions = event["partitions"]
        assert isinstance(partitions, list)
        latest[event.get("worker")] = partitions
    return {str(p) for partitions in latest.values() for p in partitions}


@pytest.mark.parametrize("workers", [1, 2])  # each instance `serve --workers 2`
async def test_killed_instance_hands_its_partitions_to_the_other_exactly_once(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, workers: int
) -> None:
    args = ["--workers", str(workers)]
    stream = make_stream(COMMENTS)
    first, rest = stream.split(len(stream) * 3 // 5)
    database_url = f"sqlite:///{tmp_path / 'store.db'}"  # shared by both, as in production
    env = topics.env() | {
        "MODERATION_MODEL_PATH": str(tiny_model),
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_BATCH_MAX_RECORDS": "100",
    }
    every = {f"{topics.comments}[{p}]" for p in range(PARTITIONS)}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with services() as started:
        victim = ServiceProcess(
            env | {"MODERATION_INSTANCE_ID": "a"}, tmp_path / "a" / "a.log", args
        )
        started.append(victim)
        survivor = ServiceProcess(
            env | {"MODERATION_INSTANCE_ID": "b"}, tmp_path / "b" / "b.log", args
        )
        started.append(survivor)

        async def both_hold_partitions() -> bool:
            for service in started:
                assert service.proc.poll() is None, "an instance exited"
            a, b = assignment(victim), assignment(survivor)
            return bool(a) and bool(b) and not a & b and a | b == every

        await wait_until(both_hold_partitions, 120, "the two instances to share the partitions")
        produce(topics, first, tmp_path / "in-1")

        async def under_way() -> bool:
            return await progress(topics) >= 3_000

        await wait_until(under_way, 180, "the instances to be under way")
        held = assignment(victim)
        victim.signal(signal.SIGKILL)
        assert await victim.wait(30) == -signal.SIGKILL

        async def survivor_holds_all() -> bool:
            assert survivor.proc.poll() is None, "the surviving instance exited"
            return assignment(survivor) == every

        await wait_until(survivor_holds_all, 120, f"the survivor to take over {sorted(held)}")
        produce(topics, rest, tmp_path / "in-2")
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            240,
            "the survivor to finish the stream",
        )

        # The killed instance's open transaction holds back read_committed readers of the
        # decisions topic until the broker aborts it (transaction timeout, 60 s).
        async def all_visible() -> bool:
            return len(published_decisions(topics)) >= len(stream.valid)

        await wait_until(all_visible, 180, "every decision to be visible in read_committed", 2)
        survivor.signal(signal.SIGTERM)
        assert await survivor.wait(60) == 0

    assert held  # the victim held partitions when it died
    await assert_exactly_once(topics, stream, database_url)
