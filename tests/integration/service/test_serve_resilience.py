"""`moderation serve` when the broker is not there, and on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest

from service.adapters.token_file import add_token
from tests.kafka_helpers import KafkaTopics, ServiceProcess, free_port, wait_until

pytestmark = pytest.mark.slow


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / 100


async def test_serve_with_the_broker_down_retries_with_backoff_and_stops_on_sigterm(
    tiny_model: Path, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here
    service = ServiceProcess(
        {
            "MODERATION_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_KAFKA_RETRY_MAX_SECONDS": "2",
        },
        tmp_path / "service.log",
    )
    try:

        def retries() -> list[dict[str, object]]:
            return [e for e in service.logs() if e.get("event") == "kafka unavailable, retrying"]

        async def retried_four_times() -> bool:
            assert service.proc.poll() is None, "the service exited instead of retrying"
            return len(retries()) >= 4

        await wait_until(retried_four_times, 60, "four retry log lines")
        started_cpu = cpu_seconds(service.proc.pid)
        first_four = retries()[:4]

        async def retried_twice_more() -> bool:
            return len(retries()) >= 6

        await wait_until(retried_twice_more, 60, "two more retries")
        busy = cpu_seconds(service.proc.pid) - started_cpu

        for entry in first_four:
            assert entry["level"] == "warning"
            assert entry["bootstrap"] == f"127.0.0.1:{port}"
            assert "error" in entry
        delays = [float(str(e["retry_in_seconds"])) for e in retries()]
        assert delays[0] <= 0.5  # starts small ...
        assert all(d <= 2.0 for d in delays)  # ... and is capped
        assert max(delays[3:]) >= 1.0  # ... after growing
        # two retries take >= 1 s of waiting; a spinning loop would burn that much CPU
        assert busy < 0.5

        status, body = await service.readiness()
        assert (status, body["checks"]["kafka"], body["checks"]["store"]) == (503, False, True)

        service.signal(signal.SIGTERM)
        assert await service.wait(15) == 0
    finally:
        service.ensure_dead()


async def test_serve_refuses_to_start_without_an_admin_token(
    tiny_model: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.json"
    add_token(tokens, "alice", "moderator", ["herald"])
    service = ServiceProcess(
        {"MODERATION_MODEL_PATH": str(tiny_model), "MODERATION_TOKENS_FILE": str(tokens)},
        tmp_path / "service.log",
    )
    try:
        assert await service.wait(60) == 1
    finally:
        service.ensure_dead()
    [fatal] = [e for e in service.logs() if e.get("event") == "fatal"]
    assert "has no admin token" in str(fatal["error"])


@pytest.mark.kafka
async def test_missing_feedback_topics_do_not_hold_up_a_stop(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_TOPIC_REPORTS": f"{topics.reports}-missing",
            "MODERATION_TOPIC_APPEALS": f"{topics.appeals}-missing",
        },
        tmp_path / "service.log",
    )
    try:

        async def comments_flowing() -> bool:
            assert service.proc.poll() is None, "the service exited"
            try:
                status, _ = await service.readiness()
            except aiohttp.ClientConnectionError:  # not listening yet
                return False
            return status == 200

        await wait_until(comments_flowing, 60, "the pipeline to run without the feedback topics")
        # the feedback consumer waits for the missing topics' metadata meanwhile: stop now
        service.signal(signal.SIGTERM)
        assert await service.wait(15) == 0
    finally:
        service.ensure_dead()


@pytest.mark.kafka
async def test_missing_comments_topic_is_named_and_does_not_hold_up_a_stop(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    missing = f"{topics.comments}-missing"
    service = ServiceProcess(
        topics.env()
        | {"MODERATION_MODEL_PATH": str(tiny_model), "MODERATION_TOPIC_COMMENTS": missing},
        tmp_path / "service.log",
    )
    try:

        async def told_to_create_it() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return any(
                e.get("event")
                == "comments topic missing: create it with `moderation create-topics`"
                and e.get("topic") == missing
                for e in service.logs()
            )

        # The consumer's start waits up to its request timeout (40 s) for the metadata.
        await wait_until(told_to_create_it, 90, "a warning naming the missing topic")
        seen = len(service.logs())

        async def waiting_again() -> bool:
            assert service.proc.poll() is None, "the service exited"
            return any(
                "not found in cluster metadata" in str(e.get("event"))
                for e in service.logs()[seen:]
            )

        await wait_until(waiting_again, 30, "the retry to wait for the topic's metadata again")
        service.signal(signal.SIGTERM)
        assert await service.wait(15) == 0
        # aiokafka repeats that line ten times a second; the log passes it once per 10 s.
        repeats = [
            e for e in service.logs() if "not found in cluster metadata" in str(e.get("event"))
        ]
        assert 2 <= len(repeats) <= 20
    finally:
        service.ensure_dead()
