"""Helpers for tests against the real local broker: topics, kcat, the service as a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from service.adapters.kafka_support import create_topics
from service.adapters.token_file import add_token

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = os.environ.get("MODERATION_TEST_KAFKA", "127.0.0.1:9092")


@dataclass(frozen=True)
class KafkaTopics:
    comments: str
    decisions: str
    dlq: str
    group_id: str
    shadow: str
    reports: str
    appeals: str

    @classmethod
    async def create(cls, partitions: int = 3) -> KafkaTopics:
        tag = uuid.uuid4().hex[:10]
        topics = cls(
            f"comments-{tag}",
            f"decisions-{tag}",
            f"dlq-{tag}",
            f"moderation-{tag}",
            f"shadow-{tag}",
            f"reports-{tag}",
            f"appeals-{tag}",
        )
        await create_topics(
            BOOTSTRAP,
            [
                topics.comments,
                topics.decisions,
                topics.dlq,
                topics.shadow,
                topics.reports,
                topics.appeals,
            ],
            partitions,
        )
        return topics

    def env(self) -> dict[str, str]:
        return {
            "MODERATION_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "MODERATION_TOPIC_COMMENTS": self.comments,
            "MODERATION_TOPIC_DECISIONS": self.decisions,
            "MODERATION_TOPIC_DLQ": self.dlq,
            "MODERATION_GROUP_ID": self.group_id,
            "MODERATION_TOPIC_SHADOW": self.shadow,
            "MODERATION_TOPIC_REPORTS": self.reports,
            "MODERATION_TOPIC_APPEALS": self.appeals,
        }


async def wait_until(
    condition: Callable[[], Awaitable[bool]], seconds: float, what: str, every: float = 0.2
) -> None:
    """Await a condition by polling it; fail with `what` if it does not hold in time."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(every)


async def partitions_of(topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions, f"topic {topic} has no partitions: {described}"
    return partitions


async def end_offsets(topic: str) -> dict[int, int]:
    partitions = await partitions_of(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        # aiokafka 0.14: stopping a group-less consumer before its background task has had
        # one turn re-raises that task's CancelledError. Give it the turn.
        await asyncio.sleep(0)
        await consumer.stop()


async def committed_offsets(group_id: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    except KafkaError as exc:
        if not exc.retriable:  # e.g. the offsets topic is still being created
            raise
        return {}
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def consumed_count(group_id: str, topic: str) -> int:
    """How many input records the group has committed past."""
    return sum(max(0, o) for o in (await committed_offsets(group_id, topic)).values())


async def all_consumed(group_id: str, topic: str) -> bool:
    ends = await end_offsets(topic)
    done = await committed_offsets(group_id, topic)
    return all(done.get(p, 0) >= end for p, end in ends.items())


def kcat_produce(
    topic: str,
    lines: list[tuple[bytes | None, bytes]],
    workdir: Path,
    partition: int | None = None,
) -> None:
    """Produce with kcat, one message per line, key and value split by \\x1f; into one
    partition if given (so their order is the order of processing)."""
    path = workdir / f"{topic}.in"
    with path.open("wb") as out:
        for key, value in lines:
            assert b"\n" not in value
            assert b"\x1f" not in value
            out.write((key or b"") + b"\x1f" + value + b"\n")
    subprocess.run(
        [
            "kcat",
            "-P",
            "-b",
            BOOTSTRAP,
            "-t",
            topic,
            *([] if partition is None else ["-p", str(partition)]),
            "-K",
            "\x1f",
            "-X",
            "acks=all",
            "-l",
            str(path),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )


def kcat_consume(topic: str, *, read_committed: bool = True) -> list[dict[str, Any]]:
    """Read the whole topic with kcat; each record as kcat's JSON envelope."""
    isolation = "read_committed" if read_committed else "read_uncommitted"
    result = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            BOOTSTRAP,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-J",
            "-X",
            f"isolation.level={isolation}",
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def headers_of(envelope: Mapping[str, Any]) -> dict[str, str]:
    flat = envelope.get("headers") or []
    return dict(zip(flat[::2], flat[1::2], strict=True))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`moderation serve` as a child process, its logs in a file. Its state (SQLite store)
    lives beside the log file and its HTTP port is a free one, unless `env` says otherwise.
    `args` go to `serve` (e.g. `--workers 2`)."""

    def __init__(self, env: Mapping[str, str], log_path: Path, args: Sequence[str] = ()) -> None:
        self.log_path = log_path
        state = log_path.parent
        defaults = {
            "MODERATION_STATE_DIR": str(state),
            "MODERATION_DATABASE_URL": f"sqlite:///{state / 'moderation.db'}",
            "MODERATION_HTTP_PORT": str(free_port()),
        }
        if "MODERATION_TOKENS_FILE" not in env:  # the service refuses to start without one
            tokens = state / "tokens.json"
            if not tokens.exists():
                self.admin_token = add_token(tokens, "test-admin", "admin", ["*"])
            defaults["MODERATION_TOKENS_FILE"] = str(tokens)
        self.env = {**os.environ, **defaults, **env}
        self.http_port = int(self.env["MODERATION_HTTP_PORT"])
        self._log = log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", *args],
                cwd=ROOT,
                env=self.env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line, "level": "raw"})
        return out

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """GET /readyz: the status and the JSON body."""
        url = f"http://127.0.0.1:{self.http_port}/readyz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.json()

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """GET /metrics, parsed: (name, sorted labels) -> value."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            text = await response.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def children(self) -> list[int]:
        """The pids of its child processes (the workers of `serve --workers N`)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:  # it has exited
            return []

    async def wait(self, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while (code := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"service did not exit within {seconds}s")
            await asyncio.sleep(0.05)
        self._log.close()
        return code

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()
