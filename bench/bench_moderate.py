"""Latency of synchronous moderation: `POST /api/v1/moderate` and Coral's phase endpoint at a
fixed offered rate on loopback, p50/p95/p99, with the shipped model.

    python bench/bench_moderate.py [--model DIR] [--rate 200] [--seconds 10]

The service side runs in a child process (`serve` below): the HTTP app with the real pipeline,
model and SQLite store; decisions go to the outbox (no broker is needed: publishing is the
relay's job, off the request path). The parent offers requests at the fixed rate with unique
comment ids, so every request is scored, and reads the latencies.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import aiohttp
from aiohttp import web

from bench.common import free_port, percentile, realistic_texts

ROOT = Path(__file__).resolve().parent.parent
SECRET = secrets.token_hex(16)  # the child gets it on its command line


async def serve(args: argparse.Namespace) -> int:
    from classifier import normalize  # noqa: PLC0415 - the child only
    from service.adapters.sklearn_classifier import ModelClassifier  # noqa: PLC0415
    from service.adapters.sql.store import SqlReviewStore  # noqa: PLC0415
    from service.adapters.token_file import TokenRegistry  # noqa: PLC0415
    from service.bootstrap import SystemClock  # noqa: PLC0415
    from service.contracts.codec import Limits  # noqa: PLC0415
    from service.entrypoints.http.app import app_runner, build_app  # noqa: PLC0415
    from service.entrypoints.http.coral import CoralConfig  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415
    from service.usecases.pipeline import Pipeline, Topics  # noqa: PLC0415
    from service.usecases.review_service import ReviewService  # noqa: PLC0415
    from service.usecases.sync_moderation import SyncModerator  # noqa: PLC0415

    settings = Settings.from_env({})
    store = SqlReviewStore.from_url(f"sqlite:///{args.db}")
    await store.migrate()
    clock = SystemClock()
    pipeline = Pipeline(
        ModelClassifier.load(Path(args.model)),
        settings.policy,
        clock,
        Topics(),
        Limits(),
        normalize=normalize,
    )
    executor = ThreadPoolExecutor(max_workers=1)
    moderator = SyncModerator(pipeline, store, clock, executor, decisions_topic="decisions")
    app = build_app(
        ReviewService(store, clock, decisions_topic="decisions", claim_lease=timedelta(minutes=5)),
        TokenRegistry.load(Path(args.tokens)),
        moderator=moderator,
        coral=CoralConfig(secrets=(args.secret.encode(),), budget_seconds=0.2),
        moderate_budget_seconds=1.0,
    )
    runner = app_runner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print("ready", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    finally:
        await runner.cleanup()
        await moderator.drain()
        executor.shutdown(wait=True)
        await store.close()
    return 0


def coral_body(text: str, n: int) -> bytes:
    doc = {
        "action": "NEW",
        "comment": {"body": text, "parentID": None},
        "author": {"id": f"user-{n % 5000}", "role": "COMMENTER"},
        "story": {"id": f"story-{n}", "url": "https://herald.example/a"},
        "site": {"id": "herald"},
        "tenantID": "tenant-1",
        "tenantDomain": "herald.example",
    }
    return json.dumps(doc, indent=2).encode()


async def offer(
    url: str, make: list[tuple[bytes, dict[str, str]]], rate: float
) -> tuple[list[float], dict[int, int]]:
    """Send the requests at `rate` per second; latency in ms of each, and status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        start = time.perf_counter()
        for n, (body, headers) in enumerate(make):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the offered rate: a schedule, not a wait
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
    return latencies, statuses


async def run(args: argparse.Namespace) -> int:
    from service.adapters.token_file import add_token  # noqa: PLC0415

    texts = realistic_texts()
    count = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.json"
        token = add_token(tokens, "bench", "site", ["herald"])
        add_token(tokens, "root", "admin", ["*"])
        port = free_port()
        child = subprocess.Popen(  # noqa: ASYNC220 - started once, before the clock runs
            [
                sys.executable,
                __file__,
                "serve",
                "--port",
                str(port),
                "--model",
                args.model,
                "--db",
                str(Path(tmp) / "store.db"),
                "--tokens",
                str(tokens),
                "--secret",
                SECRET,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=os.environ.copy(),
        )
        try:
            assert child.stdout is not None
            ready = await asyncio.get_running_loop().run_in_executor(None, child.stdout.readline)
            assert ready.strip() == b"ready", ready
            base = f"http://127.0.0.1:{port}"
            moderate = [
                (
                    json.dumps(
                        {"id": f"m-{n}", "site_id": "herald", "text": texts[n % len(texts)]}
                    ).encode(),
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                for n in range(count)
            ]
            coral = []
            for n in range(count):
                body = coral_body(texts[(n + 7) % len(texts)], n)
                sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                coral.append(
                    (
                        body,
                        {"X-Coral-Signature": f"sha256={sig}", "Content-Type": "application/json"},
                    )
                )
            rows = []
            for name, path, requests in (
                ("POST /api/v1/moderate", "/api/v1/moderate", moderate),
                ("POST /integrations/coral/moderation", "/integrations/coral/moderation", coral),
            ):
                latencies, statuses = await offer(base + path, requests, args.rate)
                rows.append((name, latencies, statuses))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)
    print(f"offered {args.rate:g} requests/s for {args.seconds:g} s each, model {args.model}")
    print("| endpoint | requests | p50 ms | p95 ms | p99 ms | max ms | statuses |")
    print("|---|---|---|---|---|---|---|")
    for name, latencies, statuses in rows:
        print(
            f"| {name} | {len(latencies)} | {percentile(latencies, 50):.1f} | "
            f"{percentile(latencies, 95):.1f} | {percentile(latencies, 99):.1f} | "
            f"{max(latencies):.1f} | {dict(sorted(statuses.items()))} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="mode")
    child = sub.add_parser("serve")
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--model", required=True)
    child.add_argument("--db", required=True)
    child.add_argument("--tokens", required=True)
    child.add_argument("--secret", required=True)
    parser.add_argument("--model", default=str(ROOT / ".state" / "model"))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    return asyncio.run(serve(args) if args.mode == "serve" else run(args))


if __name__ == "__main__":
    sys.exit(main())
