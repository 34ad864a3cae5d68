"""`moderation serve --workers 2` against the real broker: two pipeline processes in one
consumer group behind one HTTP port, one /metrics view, and one clean stop for all."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.faults.fault_kit import assert_exactly_once, log_events, make_stream, produce
from tests.integration.ops.test_prometheus import promtool_check_metrics, scrape
from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    partitions_of,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WORKERS = ("w0", "w1")


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assignments(service: ServiceProcess) -> dict[str, set[str]]:
    """Each worker's partitions now, from its latest assignment log line."""
    latest: dict[str, set[str]] = {}
    for event in log_events(service, "partitions assigned"):
        partitions = event["partitions"]
        assert isinstance(partitions, list)
        latest[str(event.get("worker"))] = {str(p) for p in partitions}
    return latest


def workers_env(topics: KafkaTopics, tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    return topics.env() | {
        "MODERATION_MODEL_PATH": str(tiny_model),
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",  # shared by both
        "MODERATION_BATCH_MAX_RECORDS": "100",
        "MODERATION_INSTANCE_ID": "host-a",
    }


async def get(service: ServiceProcess, path: str, token: str | None = None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{service.http_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_two_workers_share_the_partitions_decide_once_and_stop_together(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    partitions = await partitions_of(topics.comments)
    assert len(partitions) >= 2, "the comments topic needs partitions for both workers"
    every = {f"{tp.topic}[{tp.partition}]" for tp in partitions}
    stream = make_stream(3_000)
    env = workers_env(topics, tiny_model, tmp_path)
    service = ServiceProcess(env, tmp_path / "service.log", args=["--workers", "2"])
    try:

        async def shared() -> bool:
            assert service.proc.poll() is None, "the service exited"
            held = assignments(service)
            if set(held) != set(WORKERS) or not all(held.values()):
                return False
            w0, w1 = held["w0"], held["w1"]
            return not w0 & w1 and w0 | w1 == every

        await wait_until(shared, 120, "both workers to hold partitions, together all of them")
        workers = service.children()
        assert len(workers) == 2

        async def ready() -> bool:
            status, _ = await service.readiness()
            return status == 200

        await wait_until(ready, 60, "/readyz to say the host is ready")
        status, body = await service.readiness()
        assert body["status"] == "ok"
        assert set(body["workers"]) == set(WORKERS)
        assert body["checks"] == {"model": True, "store": True, "kafka": True, "workers": True}

        produce(topics, stream.lines, tmp_path / "in")
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            180,
            "the workers to commit past the stream",
        )

        async def counted_all() -> bool:
            metrics = await service.metrics()
            consumed = {
                dict(labels)["worker"]: value
                for (name, labels), value in metrics.items()
                if name == "moderation_comments_consumed_total"
            }
            return sum(consumed.values()) == len(stream)

        await wait_until(counted_all, 30, "/metrics to count every record once")
        metrics = await service.metrics()
        consumed = {
            dict(labels)["worker"]: value
            for (name, labels), value in metrics.items()
            if name == "moderation_comments_consumed_total"
        }
        assert set(consumed) == set(WORKERS)
        assert all(value > 0 for value in consumed.values()), consumed  # both did work
        for worker in WORKERS:
            assert metrics[("moderation_worker_up", (("worker", worker),))] == 1
        assert ("process_resident_memory_bytes", (("worker", "supervisor"),)) in metrics
        exposition = await scrape(service)
        promtool_check_metrics(exposition)
        assert exposition.count("# TYPE moderation_comments_consumed_total counter") == 1

        # the rest of the HTTP API answers on the same port
        assert service.admin_token
        status, me = await get(service, "/api/v1/me", service.admin_token)
        assert status == 200, me
        assert "test-admin" in me
        status, _ = await get(service, "/api/v1/me")
        assert status == 401
        status, page = await get(service, "/")
        assert status == 200
        assert "<html" in page.lower()

        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0
        assert not any(alive(pid) for pid in workers)
    finally:
        service.ensure_dead()

    await assert_exactly_once(topics, stream, env["MODERATION_DATABASE_URL"])
    stopped = [e for e in service.logs() if e.get("event") == "stopped"]
    assert {e.get("worker") for e in stopped} == set(WORKERS)  # each committed and left


async def test_a_killed_supervisor_takes_its_workers_with_it(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    service = ServiceProcess(
        workers_env(topics, tiny_model, tmp_path), tmp_path / "service.log", ["--workers", "2"]
    )
    try:

        async def started() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return len(service.children()) == 2

        await wait_until(started, 60, "two workers")
        workers = service.children()
        service.signal(signal.SIGKILL)
        assert await service.wait(30) == -signal.SIGKILL

        async def orphans_gone() -> bool:
            return not any(alive(pid) for pid in workers)

        await wait_until(orphans_gone, 10, "the workers to die with their supervisor")
    finally:
        service.ensure_dead()


async def test_a_worker_that_dies_stops_the_host_with_a_failure(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    service = ServiceProcess(
        workers_env(topics, tiny_model, tmp_path), tmp_path / "service.log", ["--workers", "2"]
    )
    try:

        async def listening() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return len(log_events(service, "http listening")) == 3  # the front and two workers

        await wait_until(listening, 60, "the workers to listen")
        victim, other = service.children()
        os.kill(victim, signal.SIGKILL)
        assert await service.wait(60) == 1
        assert not alive(other)
    finally:
        service.ensure_dead()
    [failure] = log_events(service, "worker exited unexpectedly, stopping the others")
    assert failure["exit_code"] == -signal.SIGKILL
