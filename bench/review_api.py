"""Review API: requests/s and latency of claim and decide with a full queue, SQLite and
PostgreSQL.

The store is seeded directly (`SqlReviewStore.record_decisions`) with `review` items of one
site, the API is served by bench/review_server.py in its own process, and a loopback load
generator (aiohttp, one moderator token per worker) runs each phase for a fixed time:

* claim: each worker claims 10 items per request (the API's default count), repeatedly;
* decide: each worker approves, one request per item, the items it claimed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.common import PYTHON, Child, Databases, child_env, free_port, percentile, poll_until
from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import add_token
from service.domain.model import Action, Reason, ReasonCode, Scores
from service.domain.review import StoredComment

if TYPE_CHECKING:
    from bench.run_all import Table

SITE = "herald"
WORKERS = 8
CLAIM_COUNT = 10


async def seed(url: str, items: int, texts: Sequence[str]) -> float:
    """`items` review items of one site, queued one millisecond apart; returns seconds."""
    store = SqlReviewStore.from_url(url)
    started = time.monotonic()
    try:
        await store.migrate()
        t0 = datetime.now(UTC) - timedelta(hours=2)
        chunk: list[StoredComment] = []
        for i in range(items):
            at = t0 + timedelta(milliseconds=i)
            cid = f"q-{i}"
            chunk.append(
                StoredComment(
                    site_id=SITE,
                    comment_id=cid,
                    text=texts[i % len(texts)],
                    author_id=f"user-{i % 20_000}",
                    author_name=f"Reader {i % 20_000}",
                    thread_id=f"article-{i % 2_000}",
                    created_at=at - timedelta(seconds=1),
                    scores=Scores(spam=0.6, abuse=0.2),
                    reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "spam score 0.600 uncertain"),),
                    action=Action.REVIEW,
                    model_version="bench",
                    policy_version="bench",
                    decided_at=at,
                    event_json=json.dumps({"id": cid, "site_id": SITE}),
                    text_hash=f"{i:032x}",
                    campaign_author=f"author:user-{i % 20_000}",
                )
            )
            if len(chunk) == 2_000:
                await store.record_decisions(chunk)
                chunk = []
        await store.record_decisions(chunk)
    finally:
        await store.close()
    return time.monotonic() - started


@dataclass(frozen=True)
class Phase:
    requests: int
    errors: int
    seconds: float
    p50: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _phase(latencies: list[float], errors: int, seconds: float) -> Phase:
    if not latencies:
        return Phase(0, errors, seconds, float("nan"), float("nan"))
    return Phase(
        len(latencies), errors, seconds, percentile(latencies, 50), percentile(latencies, 99)
    )


async def load(port: int, tokens: Sequence[str], seconds: float) -> tuple[Phase, Phase]:
    """Claim for `seconds`, then decide the claimed items for `seconds`."""
    base = f"http://127.0.0.1:{port}/api/v1"
    timeout = aiohttp.ClientTimeout(total=30)
    claimed: list[list[str]] = [[] for _ in tokens]
    claim_lat: list[float] = []
    decide_lat: list[float] = []
    errors = {"claim": 0, "decide": 0}

    async def claim_worker(
        session: aiohttp.ClientSession, index: int, token: str, until: float
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        body = {"site_id": SITE, "count": CLAIM_COUNT}
        while time.monotonic() < until:
            t0 = time.perf_counter()
            async with session.post(f"{base}/queue/claim", json=body, headers=headers) as resp:
                doc: dict[str, Any] = await resp.json()
                ok = resp.status == 200
            claim_lat.append(time.perf_counter() - t0)
            if not ok:
                errors["claim"] += 1
                continue
            claimed[index].extend(item["comment_id"] for item in doc["items"])

    async def decide_worker(
        session: aiohttp.ClientSession, index: int, token: str, until: float
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        body = {"action": "approve", "reason": "ok"}
        for cid in claimed[index]:
            if time.monotonic() >= until:
                return
            t0 = time.perf_counter()
            url = f"{base}/items/{SITE}/{cid}/decision"
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                ok = resp.status == 200
            decide_lat.append(time.perf_counter() - t0)
            if not ok:
                errors["decide"] += 1

    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(claim_worker(session, i, t, until) for i, t in enumerate(tokens)))
        claim = _phase(claim_lat, errors["claim"], time.monotonic() - started)
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(decide_worker(session, i, t, until) for i, t in enumerate(tokens)))
        decide = _phase(decide_lat, errors["decide"], time.monotonic() - started)
    return claim, decide


async def _ready(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def one_store(
    url: str, items: int, seconds: float, workdir: Path, label: str
) -> tuple[float, Phase, Phase]:
    from bench.common import realistic_texts  # noqa: PLC0415

    seeded = await seed(url, items, realistic_texts())
    tokens_file = workdir / f"tokens-{label}.json"
    tokens = [add_token(tokens_file, f"mod-{i}", "moderator", [SITE]) for i in range(WORKERS)]
    port = free_port()
    server = Child(
        [
            *(PYTHON, "-m", "bench.review_server", "--database-url", url),
            *("--tokens", str(tokens_file), "--port", str(port)),
            *("--max-seconds", str(seconds * 2 + 120)),
        ],
        child_env({}),
        workdir / f"review-server-{label}.log",
    )
    try:
        await poll_until(lambda: _ready(port), 60, "the review API")
        claim, decide = await load(port, tokens, seconds)
    except BaseException:
        print(server.tail(), flush=True)
        raise
    finally:
        server.stop()
    return seeded, claim, decide


def section(
    table: Table, databases: Databases | None, workdir: Path, items: int, seconds: float
) -> None:
    stores = [("sqlite", f"sqlite:///{workdir / 'review-api.db'}")]
    if databases is not None:
        stores.append(("postgresql", databases.create("api")))
    for label, url in stores:
        seeded, claim, decide = asyncio.run(one_store(url, items, seconds, workdir, label))
        print(f"  {label}: seeded {items:,} items in {seeded:.1f} s", flush=True)
        for name, phase, extra in (
            ("claim", claim, f", {CLAIM_COUNT} items each"),
            ("decide", decide, ""),
        ):
            errors = f", {phase.errors} errors" if phase.errors else ""
            table.add(
                f"review API {name}, {label}, {items:,} queued, {WORKERS} clients{extra}",
                f"{phase.rate:,.0f} req/s, p50 {phase.p50 * 1000:,.1f} ms, "
                f"p99 {phase.p99 * 1000:,.1f} ms{errors}",
            )
