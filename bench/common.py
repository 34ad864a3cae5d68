"""Shared pieces of the benchmarks: the broker, topics, offsets, the test comments, processes.

Everything talks to 127.0.0.1 only, and every wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = "127.0.0.1:9092"
PYTHON = sys.executable
SITES = ("herald", "tech-blog", "daily-post", "city-news", "sports-desk")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def realistic_texts(seed: int = 0) -> list[str]:
    """Real comments from the bundled training data: news-site comments (ToxicSpans) and
    YouTube comments, the same selection as bench/bench_classifier.py, shuffled."""
    from classifier.data import load_examples  # noqa: PLC0415 - heavy; only when needed

    texts = [
        e.text
        for e in load_examples()
        if e.source == "toxic_spans" or e.source.startswith("youtube")
    ]
    random.Random(seed).shuffle(texts)
    return texts


def comment_event(
    texts: Sequence[str], rng: random.Random, comment_id: str, created_at: datetime
) -> tuple[bytes, bytes]:
    """One `comments` record (key, value): a text drawn from `texts`, an author drawn from a
    pool of 20,000, five sites."""
    site = rng.choice(SITES)
    author = rng.randrange(20_000)
    doc = {
        "schema": "moderation.comment.v1",
        "id": comment_id,
        "site_id": site,
        "thread_id": f"article-{rng.randrange(2_000)}",
        "text": rng.choice(texts),
        "author": {"id": f"user-{author}", "name": f"Reader {author}"},
        "created_at": rfc3339(created_at),
        "lang": "en",
    }
    return f"{site}:{comment_id}".encode(), json.dumps(doc).encode()


def write_kcat_file(path: Path, records: Sequence[tuple[bytes, bytes]]) -> int:
    """kcat -K '\\x1f' -l input: key, separator, value, newline. Returns the bytes of values."""
    total = 0
    with path.open("wb") as out:
        for key, value in records:
            assert b"\n" not in value
            assert b"\x1f" not in value
            assert b"\x1f" not in key
            out.write(key + b"\x1f" + value + b"\n")
            total += len(value)
    return total


@dataclass(frozen=True)
class TopicSet:
    """Unique topic names for one run of the service (or of the passthrough)."""

    tag: str
    comments: str
    decisions: str
    dlq: str
    shadow: str
    group: str

    @classmethod
    def new(cls, label: str, comments: str | None = None) -> TopicSet:
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        return cls(
            tag,
            comments or f"bench-comments-{tag}",
            f"bench-decisions-{tag}",
            f"bench-dlq-{tag}",
            f"bench-shadow-{tag}",
            f"bench-group-{tag}",
        )

    def outputs(self) -> list[str]:
        return [self.decisions, self.dlq, self.shadow]

    def service_env(self) -> dict[str, str]:
        return {
            "MODERATION_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "MODERATION_TOPIC_COMMENTS": self.comments,
            "MODERATION_TOPIC_DECISIONS": self.decisions,
            "MODERATION_TOPIC_DLQ": self.dlq,
            "MODERATION_TOPIC_SHADOW": self.shadow,
            "MODERATION_GROUP_ID": self.group,
        }


class Topics:
    """Creates topics and remembers them, so that `delete_all` removes every one."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def create(self, names: Sequence[str], partitions: int) -> None:
        from service.adapters.kafka_support import create_topics  # noqa: PLC0415

        self.created.extend(await create_topics(BOOTSTRAP, list(names), partitions))

    async def delete_all(self) -> None:
        if not self.created:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            doomed = [t for t in self.created if t in existing]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()
        self.created.clear()


async def end_offsets(topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await asyncio.sleep(0)  # aiokafka 0.14: let the fetcher task start before stopping
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


class OffsetWatcher:
    """Polls a consumer group's committed offsets on one topic with one admin client."""

    def __init__(self, group: str, topic: str) -> None:
        self._group = group
        self._topic = topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)

    async def __aenter__(self) -> OffsetWatcher:
        await self._admin.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._admin.close()

    async def committed(self) -> dict[int, int]:
        try:
            offsets = await self._admin.list_consumer_group_offsets(self._group)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return {}
        return {
            tp.partition: max(0, meta.offset)
            for tp, meta in offsets.items()
            if tp.topic == self._topic
        }


@dataclass(frozen=True)
class Drain:
    """How a consumer group got through a pre-filled topic."""

    records: int
    wall_seconds: float  # from launch to all committed
    first_commit_seconds: float  # from launch to the first committed offset
    steady_rate: float  # records/s between the first commit and the last
    # CPU (user + system) the watched processes spent per record between the first commit
    # and the last, in seconds: unlike a rate, other jobs on the machine barely move it
    cpu_per_record: float = float("nan")

    @property
    def overall_rate(self) -> float:
        return self.records / self.wall_seconds


async def wait_drained(
    group: str,
    topic: str,
    ends: Mapping[int, int],
    *,
    started: float,
    limit_seconds: float,
    alive: Callable[[], bool],
    every: float = 0.1,
    pids: Callable[[], Sequence[int]] | None = None,
) -> Drain:
    """Poll until the group's committed offsets reach `ends`; `started` is the launch time
    (time.monotonic). Fails if `alive()` turns false or `limit_seconds` pass. With `pids`,
    the CPU time of those processes is read at the first commit and at the last."""
    total = sum(ends.values())
    first: tuple[float, int] | None = None
    cpu_at_first = 0.0
    deadline = started + limit_seconds
    async with OffsetWatcher(group, topic) as watcher:
        while True:
            done = await watcher.committed()
            now = time.monotonic()
            count = sum(min(done.get(p, 0), end) for p, end in ends.items())
            if first is None and count > 0:
                first = (now, count)
                cpu_at_first = cpu_seconds(pids()) if pids else 0.0
            if count >= total:
                break
            if now > deadline:
                raise TimeoutError(
                    f"group {group} committed {count}/{total} in {limit_seconds:.0f}s"
                )
            if not alive():
                raise RuntimeError(f"a process of group {group} died ({count}/{total} done)")
            await asyncio.sleep(every)
    assert first is not None
    steady = (total - first[1]) / (now - first[0]) if now > first[0] else float("nan")
    cpu = float("nan")
    if pids and total > first[1]:
        cpu = (cpu_seconds(pids()) - cpu_at_first) / (total - first[1])
    return Drain(total, now - started, first[0] - started, steady, cpu)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of live processes (their own threads, not their children)."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a live process, in MB (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class Child:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.env = dict(env)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            list(args), cwd=ROOT, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


async def poll_until(
    condition: Callable[[], Awaitable[bool]], seconds: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(every)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_admin_url() -> str:
    """The local PostgreSQL (MODERATION_TEST_DATABASE_URL, or deploy/postgres/pg.sh, which is
    started if it is not running)."""
    url = os.environ.get("MODERATION_TEST_DATABASE_URL")
    if url:
        return url
    if os.environ.get("MODERATION_BENCH_NO_PG_START"):
        script = ROOT / "deploy" / "postgres" / "pg.sh"
        return (
            subprocess.run([str(script), "url"], check=True, timeout=30, capture_output=True)
            .stdout.decode()
            .strip()
        )
    script = ROOT / "deploy" / "postgres" / "pg.sh"
    subprocess.run([str(script), "start"], check=True, timeout=300, capture_output=True)
    out = subprocess.run([str(script), "url"], check=True, timeout=30, capture_output=True)
    return out.stdout.decode().strip()


class Databases:
    """Fresh PostgreSQL databases for one benchmark run, dropped by `drop_all`."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = admin_url
        self._created: list[str] = []

    def create(self, label: str) -> str:
        import psycopg  # noqa: PLC0415

        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        try:
            conn = psycopg.connect(self._admin_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError:  # someone stopped it (the test suite does): restart
            postgres_admin_url()
            conn = psycopg.connect(self._admin_url, autocommit=True, connect_timeout=10)
        with conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        self._created.append(name)
        base, _, _ = self._admin_url.rpartition("/")
        return f"{base}/{name}"

    def drop_all(self) -> None:
        import psycopg  # noqa: PLC0415

        if not self._created:
            return
        with psycopg.connect(self._admin_url, autocommit=True, connect_timeout=10) as conn:
            for name in self._created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        self._created.clear()
