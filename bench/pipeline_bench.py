"""Broker, transport and service throughput, latency under load and memory, on the real stack.

Used by bench/run_all.py; each function starts what it needs and stops it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer

from bench.common import (
    BOOTSTRAP,
    PYTHON,
    Child,
    Drain,
    Topics,
    TopicSet,
    child_env,
    comment_event,
    end_offsets,
    free_port,
    peak_rss_mb,
    percentile,
    poll_until,
    realistic_texts,
    wait_drained,
    write_kcat_file,
)
from service.adapters.token_file import add_token

PARTITIONS = 4
DRAIN_TIMEOUT = 240.0


@dataclass(frozen=True)
class Fill:
    topic: str
    records: int
    mean_value_bytes: float
    produce_rate: float  # kcat -P, messages/s
    consume_rate: float  # kcat -C, messages/s
    ends: dict[int, int]


def timed_kcat(args: list[str], input_file: Path | None) -> tuple[float, bytes]:
    """Run kcat against the local broker; returns (seconds, stdout)."""
    command = ["kcat", "-b", BOOTSTRAP, *args]
    if input_file is not None:
        command += ["-l", str(input_file)]
    started = time.monotonic()
    out = subprocess.run(command, check=True, timeout=300, capture_output=True).stdout
    return time.monotonic() - started, out


async def prefill(topics: Topics, records: int, workdir: Path) -> Fill:
    """Write `records` comments drawn from the training data to a new topic with kcat, then
    read them all back with kcat: both timed (the broker limit)."""
    texts = realistic_texts()
    rng = random.Random(1)
    now = datetime.now(UTC)
    events = [comment_event(texts, rng, f"c-{i}", now) for i in range(records)]
    path = workdir / "comments.kcat"
    value_bytes = write_kcat_file(path, events)
    del events
    topic = TopicSet.new("input").comments
    await topics.create([topic], PARTITIONS)
    produce, _ = await asyncio.to_thread(
        timed_kcat,
        ["-P", "-t", topic, "-K", "\x1f", "-X", "acks=all", "-X", "enable.idempotence=true"],
        path,
    )
    ends = await end_offsets(topic)
    if sum(ends.values()) != records:
        raise RuntimeError(f"kcat wrote {sum(ends.values())} of {records} records to {topic}")
    consume, out = await asyncio.to_thread(
        timed_kcat,
        [
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "\\n",
            "-X",
            "isolation.level=read_committed",
        ],
        None,
    )
    got = out.count(b"\n")
    if got != records:
        raise RuntimeError(f"kcat read {got} of {records} records from {topic}")
    path.unlink()
    return Fill(topic, records, value_bytes / records, records / produce, records / consume, ends)


async def passthrough(topics: Topics, fill: Fill, processes: int, workdir: Path) -> Drain:
    """The bare transactional copy (bench/passthrough.py) over the pre-filled topic."""
    run = TopicSet.new(f"pass{processes}", comments=fill.topic)
    await topics.create([run.decisions], PARTITIONS)
    started = time.monotonic()
    children = [
        Child(
            [
                *(PYTHON, "-m", "bench.passthrough", "--source", fill.topic),
                *("--target", run.decisions, "--group", run.group),
                *("--transactional-id", f"{run.group}-{i}"),
            ],
            child_env({}),
            workdir / f"{run.tag}-{i}.log",
        )
        for i in range(processes)
    ]
    try:
        return await wait_drained(
            run.group,
            fill.topic,
            fill.ends,
            started=started,
            limit_seconds=DRAIN_TIMEOUT,
            alive=lambda: all(c.alive() for c in children),
            pids=lambda: [c.pid for c in children],
        )
    finally:
        for child in children:
            child.stop()


@dataclass(frozen=True)
class ServiceRun:
    processes: int
    store: str  # "sqlite" or "postgresql"
    drain: Drain
    peak_rss_mb: list[float]
    profile: Path | None


# Extra MODERATION_* settings for every service process (`run_all.py --service-setting`).
SERVICE_SETTINGS: dict[str, str] = {}


def start_services(
    run: TopicSet,
    processes: int,
    model: Path,
    database_url: str,
    workdir: Path,
    *,
    workers: int = 1,
) -> list[Child]:
    state = workdir / run.tag
    state.mkdir(parents=True, exist_ok=True)
    tokens = state / "tokens.json"
    add_token(tokens, "bench-admin", "admin", ["*"])
    return [
        Child(
            [PYTHON, "-m", "service", "serve", "--workers", str(workers)],
            child_env(
                {
                    **run.service_env(),
                    "MODERATION_STATE_DIR": str(state),
                    "MODERATION_MODEL_PATH": str(model),
                    "MODERATION_DATABASE_URL": database_url,
                    "MODERATION_INSTANCE_ID": f"bench-{i}",
                    "MODERATION_TOKENS_FILE": str(tokens),
                    "MODERATION_HTTP_PORT": str(free_port()),
                    **SERVICE_SETTINGS,
                }
            ),
            state / f"service-{i}.log",
        )
        for i in range(processes)
    ]


def http_port(child: Child) -> int:
    return int(child.env["MODERATION_HTTP_PORT"])


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy (if installed) samples the service's threads into collapsed stacks."""
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(spy).is_file():
        print("  (py-spy not installed: no profile)", flush=True)
        return None
    return subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100"),
            *("--nonblocking", "--threads", "--duration", "600", "-o", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def service_throughput(
    topics: Topics,
    fill: Fill,
    *,
    processes: int,
    model: Path,
    database_url: str,
    workdir: Path,
    profile: bool = False,
    workers: int = 1,
) -> ServiceRun:
    """`moderation serve` x `processes` (one group, distinct instance ids) drains the
    pre-filled topic; timed to the group's committed offsets reaching the end offsets."""
    run = TopicSet.new(f"svc{processes}w{workers}", comments=fill.topic)
    await topics.create(run.outputs(), PARTITIONS)
    started = time.monotonic()
    children = start_services(run, processes, model, database_url, workdir, workers=workers)
    spy = None
    profile_path = workdir / f"{run.tag}.pyspy.txt"
    try:
        if profile:
            spy = start_profiler(children[0].pid, profile_path)
        drain = await wait_drained(
            run.group,
            fill.topic,
            fill.ends,
            started=started,
            limit_seconds=DRAIN_TIMEOUT,
            alive=lambda: all(c.alive() for c in children),
            pids=lambda: [p for c in children for p in (c.pid, *worker_pids(c.pid))],
        )
        pids = [pid for c in children for pid in (worker_pids(c.pid) if workers > 1 else [c.pid])]
        rss = [peak_rss_mb(pid) or float("nan") for pid in pids]
    except BaseException:
        for child in children:
            print(child.tail(), flush=True)
        raise
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=30)
            if spy.poll() is None:
                spy.kill()
                spy.wait(timeout=10)
        for child in children:
            child.stop()
    store = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    found = profile_path if profile_path.is_file() else None
    return ServiceRun(processes, store, drain, rss, found)


def worker_pids(pid: int) -> list[int]:
    """The workers of a `serve --workers N` supervisor (its child processes)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass(frozen=True)
class LatencyRow:
    offered: float
    achieved: float
    measured: int
    decided: tuple[float, float, float, float]  # p50, p95, p99, max of created -> decided_at
    visible: tuple[float, float, float, float]  # ... created -> read_committed reader got it


async def _ready(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _stats(values: Sequence[float]) -> tuple[float, float, float, float]:
    return (
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        max(values),
    )


async def latency(
    topics: Topics,
    *,
    rates: Sequence[int],
    seconds: float,
    model: Path,
    database_url: str,
    workdir: Path,
    warmup: float = 2.0,
) -> list[LatencyRow]:
    """One service process; comments offered at each rate in turn for `seconds`, with
    `created_at` = send time; decisions read read_committed as they commit."""
    run = TopicSet.new("lat")
    await topics.create([run.comments, *run.outputs()], PARTITIONS)
    [service] = start_services(run, 1, model, database_url, workdir)
    seen: dict[str, tuple[float, float]] = {}  # comment id -> (decided_at, received), epoch s
    stop = asyncio.Event()

    async def read_decisions() -> None:
        consumer = AIOKafkaConsumer(
            run.decisions,
            bootstrap_servers=BOOTSTRAP,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100, max_records=5_000)
                received = time.time()
                for records in batch.values():
                    for r in records:
                        doc = json.loads(r.value)
                        decided = datetime.fromisoformat(doc["decided_at"]).timestamp()
                        seen[doc["comment_id"]] = (decided, received)
        finally:
            await consumer.stop()

    reader = asyncio.create_task(read_decisions())
    rows: list[LatencyRow] = []
    try:
        await poll_until(lambda: _ready(http_port(service)), 90, "the service to be ready")
        for rate in rates:
            prefix = f"r{rate}"
            gen = await asyncio.create_subprocess_exec(
                PYTHON,
                "-m",
                "bench.loadgen",
                "--topic",
                run.comments,
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
                "--prefix",
                prefix,
                env=child_env({}),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(gen.communicate(), timeout=seconds * 3 + 60)
            line = out.decode().strip()
            sent = int(line.split()[1])
            achieved = float(line.rsplit("=", 1)[1].strip().removesuffix("/s"))

            async def all_seen(prefix: str = prefix, sent: int = sent) -> bool:
                return sum(1 for k in list(seen) if k.startswith(prefix + "-")) >= sent

            await poll_until(all_seen, 180, f"all {sent} decisions at {rate}/s")
            created = {
                k: int(k.rsplit("-", 1)[1]) / 1e6 for k in seen if k.startswith(prefix + "-")
            }
            first = min(created.values())
            keep = [k for k, c in created.items() if c >= first + warmup]
            rows.append(
                LatencyRow(
                    rate,
                    achieved,
                    len(keep),
                    _stats([seen[k][0] - created[k] for k in keep]),
                    _stats([seen[k][1] - created[k] for k in keep]),
                )
            )
            print(f"  latency at {rate}/s: {rows[-1]}", flush=True)
    except BaseException:
        print(service.tail(), flush=True)
        raise
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, timeout=10)
        service.stop()
    return rows
