"""Fault: the service is SIGKILLed at random points of a 20,000-comment stream, five times, and
restarted each time; no decision is lost or doubled."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from tests.e2e.faults.fault_kit import (
    assert_exactly_once,
    make_stream,
    produce,
    progress,
    services,
)
from tests.kafka_helpers import KafkaTopics, ServiceProcess, all_consumed, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COMMENTS = 20_000
KILLS = 5


@pytest.mark.parametrize("workers", [1, 2])  # `serve --workers 2`: both killed with it
async def test_five_sigkills_at_random_points_lose_and_double_nothing(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, workers: int
) -> None:
    args = ["--workers", str(workers)]
    stream = make_stream(COMMENTS)
    produce(topics, stream.lines, tmp_path / "in")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # Kill points (records committed), one in each fifth of the first 80% of the stream,
    # so that every kill lands mid-stream whatever the speed of the machine.
    span = int(len(stream) * 0.8) // KILLS
    targets = [i * span + rng.randrange(span // 4, span) for i in range(KILLS)]
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = topics.env() | {
        "MODERATION_MODEL_PATH": str(tiny_model),
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_BATCH_MAX_RECORDS": "100",  # many transactions to land a kill inside
        "MODERATION_INSTANCE_ID": "sigkill",  # the restart fences the killed one's transaction
    }

    at_kill: list[int] = []
    with services() as started:
        for round_, target in enumerate(targets):
            service = ServiceProcess(env, tmp_path / f"service-{round_}.log", args)
            started.append(service)

            async def reached(target: int = target, service: ServiceProcess = service) -> bool:
                assert service.proc.poll() is None, f"the service exited (seed {seed})"
                return await progress(topics) >= target

            await wait_until(reached, 180, f"{target} records committed (seed {seed})")
            service.signal(signal.SIGKILL)
            assert await service.wait(30) == -signal.SIGKILL
            at_kill.append(await progress(topics))

        last = ServiceProcess(env, tmp_path / "service-last.log", args)
        started.append(last)
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            240,
            f"the restarted service to finish the stream (seed {seed})",
        )
        last.signal(signal.SIGTERM)
        assert await last.wait(60) == 0

    assert len(at_kill) == KILLS
    assert all(0 < done < len(stream) for done in at_kill), (at_kill, seed)  # mid-stream
    await assert_exactly_once(topics, stream, database_url)
