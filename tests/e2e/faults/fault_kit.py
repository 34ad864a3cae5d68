"""Shared pieces of the fault-injection tests: a 20,000-comment stream, the exactly-once check
against the read_committed decisions topic and the review store, and outages of the real
broker and database that are always undone."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from service.adapters.sql.store import SqlReviewStore
from tests.kafka_helpers import (
    ROOT,
    KafkaTopics,
    ServiceProcess,
    committed_offsets,
    consumed_count,
    kcat_consume,
    kcat_produce,
)

SITES = ("herald", "tech-blog", "city.news")
TEXTS = (
    "Thanks for this article, very informative.",
    "Check out my channel and subscribe for free gift cards!!! http://spam.example",
    "You are an idiot and everyone here hates you.",
    "I disagree with the mayor, but the reporting here is fair.",
    "Great photos of the harbour festival, thank you.",
)
BAD_EVERY = 500  # one malformed record per this many valid ones
Ident = tuple[str, str]  # (site_id, comment_id)


@dataclass(frozen=True)
class Stream:
    """Valid comments and a few malformed records, in the order they are produced."""

    lines: list[tuple[bytes | None, bytes]]
    valid: frozenset[Ident]
    bad: Counter[bytes]  # malformed values, each must be dead-lettered exactly once

    def __len__(self) -> int:
        return len(self.lines)

    def split(self, at: int) -> tuple[list[tuple[bytes | None, bytes]], ...]:
        return self.lines[:at], self.lines[at:]


def make_stream(valid: int, tag: str = "c") -> Stream:
    lines: list[tuple[bytes | None, bytes]] = []
    idents: set[Ident] = set()
    bad: Counter[bytes] = Counter()
    for n in range(valid):
        site = SITES[n % len(SITES)]
        comment_id = f"{tag}-{n:06d}"
        doc = {
            "id": comment_id,
            "site_id": site,
            "text": f"{TEXTS[n % len(TEXTS)]} (#{n})",
            "author": {"id": f"u{n % 97}", "name": "Reader"},
            "created_at": "2026-11-27T10:00:00Z",
        }
        lines.append((f"{site}:{comment_id}".encode(), json.dumps(doc).encode()))
        idents.add((site, comment_id))
        if n % BAD_EVERY == BAD_EVERY - 1:
            value = f'{{"id": "{tag}-bad-{n}", "site_id": "herald"}}'.encode()  # no text
            lines.append((b"bad", value))
            bad[value] += 1
    return Stream(lines, frozenset(idents), bad)


def produce(topics: KafkaTopics, lines: list[tuple[bytes | None, bytes]], workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    kcat_produce(topics.comments, lines, workdir)


async def progress(topics: KafkaTopics) -> int:
    """Input records the group has committed past (decisions and dead letters included)."""
    return await consumed_count(topics.group_id, topics.comments)


async def committed(topics: KafkaTopics) -> dict[int, int]:
    return await committed_offsets(topics.group_id, topics.comments)


def published_decisions(topics: KafkaTopics) -> list[dict[str, object]]:
    return [json.loads(e["payload"]) for e in kcat_consume(topics.decisions)]


def stored_actions(database_url: str) -> dict[Ident, str]:
    """The automatic action the review store holds for every comment it has."""
    query = "SELECT site_id, comment_id, auto_action FROM comments"
    rows: list[tuple[str, str, str]]
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute(query).fetchall()
    else:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(query).fetchall()
    return {(site, cid): action for site, cid, action in rows}


async def queued(database_url: str) -> set[Ident]:
    store = SqlReviewStore.from_url(database_url)
    try:
        page = await store.list_queue(None, now=datetime.now(UTC), limit=1_000_000)
    finally:
        await store.close()
    return {(item.site_id, item.comment_id) for item in page.items}


async def assert_exactly_once(topics: KafkaTopics, stream: Stream, database_url: str) -> None:
    """Every valid comment has exactly one automatic decision in read_committed, the store
    holds the same action for it, every review one waits in the queue once, and every
    malformed record was dead-lettered once."""
    docs = published_decisions(topics)
    per_comment = Counter((str(d["site_id"]), str(d["comment_id"])) for d in docs)
    missing = stream.valid - set(per_comment)
    assert not missing, f"{len(missing)} comments have no decision, e.g. {sorted(missing)[:5]}"
    unexpected = set(per_comment) - stream.valid
    assert not unexpected, f"decisions for unknown comments: {sorted(unexpected)[:5]}"
    twice = {ident: n for ident, n in per_comment.items() if n > 1}
    assert not twice, f"{len(twice)} comments decided more than once, e.g. {list(twice)[:5]}"
    assert {d["decided_by"] for d in docs} == {"auto"}
    assert len({d["event_id"] for d in docs}) == len(stream.valid)

    published = {(str(d["site_id"]), str(d["comment_id"])): str(d["action"]) for d in docs}
    stored = stored_actions(database_url)
    lost = set(published) - set(stored)
    assert not lost, f"{len(lost)} decided comments are not in the store, e.g. {sorted(lost)[:5]}"
    assert set(stored) == set(published)
    differ = {i for i, action in published.items() if stored[i] != action}
    assert not differ, f"store and topic disagree on {len(differ)}, e.g. {sorted(differ)[:5]}"
    reviews = {ident for ident, action in published.items() if action == "review"}
    assert await queued(database_url) == reviews

    dead = Counter(
        base64.b64decode(json.loads(e["payload"])["value_base64"]) for e in kcat_consume(topics.dlq)
    )
    assert dead == stream.bad


def kafka(command: str) -> None:
    subprocess.run(
        [str(ROOT / "deploy" / "kafka" / "kafka.sh"), command],
        check=True,
        timeout=180,
        capture_output=True,
    )


def postgres(command: str) -> None:
    subprocess.run(
        [str(ROOT / "deploy" / "postgres" / "pg.sh"), command],
        check=True,
        timeout=180,
        capture_output=True,
    )


@contextmanager
def kafka_stopped() -> Iterator[None]:
    """The broker is down inside the block and running again after it, even on failure."""
    try:
        kafka("stop")
        yield
    finally:
        kafka("start")


@contextmanager
def postgres_stopped() -> Iterator[None]:
    try:
        postgres("stop")
        yield
    finally:
        postgres("start")


@contextmanager
def services() -> Iterator[list[ServiceProcess]]:
    """Every service process started into the list is dead after the block."""
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for service in started:
            service.ensure_dead()


def log_events(service: ServiceProcess, event: str) -> list[dict[str, object]]:
    return [e for e in service.logs() if e.get("event") == event]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=60, capture_output=True)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small RAM file system at `path` (needs root), unmounted afterwards even on failure."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], check=False, timeout=60, capture_output=True)
        if done.returncode != 0:  # still busy: detach it now, it goes when the last user does
            subprocess.run(["umount", "-l", str(path)], check=True, timeout=60)


def remount(path: Path, options: str) -> None:
    _mount("-o", f"remount,{options}", str(path))
