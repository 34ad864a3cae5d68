"""Latency of the Perspective-compatible API at a fixed offered rate on loopback: p50/p95/p99
of `comments:analyze` with `doNotStore: true` (Coral's and most clients' default), of
`comments:analyze` that stores and moderates (a new `clientToken` each time), and of
`comments:suggestscore`, with the shipped model.

    python bench/bench_perspective.py [--model DIR] [--rate 200] [--seconds 10]

The service side runs in a child process (`serve` below): the HTTP app with the real
pipeline, model, language detector and SQLite store, as `moderation serve` builds it (the
outbox relay, which publishes off the request path, is left out: no broker is needed). One
site key, its rate limit set above the offered rate. Texts are real comments from the
training data.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from bench.bench_moderate import offer
from bench.common import free_port, percentile, realistic_texts

ROOT = Path(__file__).resolve().parent.parent
ATTRIBUTES = ("TOXICITY", "SEVERE_TOXICITY", "INSULT", "PROFANITY", "THREAT", "IDENTITY_ATTACK")


async def serve(args: argparse.Namespace) -> int:
    from service.adapters.sklearn_classifier import ModelClassifier  # noqa: PLC0415 - the child
    from service.adapters.sql.store import SqlReviewStore  # noqa: PLC0415
    from service.adapters.token_file import TokenRegistry  # noqa: PLC0415
    from service.bootstrap import build, http_app  # noqa: PLC0415
    from service.entrypoints.http.app import app_runner  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    # serve's wiring and defaults, but no rate limit: the bench sets the pace itself
    settings = Settings.from_env(
        {"MODERATION_PERSPECTIVE_RATE": "100000", "MODERATION_PERSPECTIVE_BURST": "100000"}
    )
    store = SqlReviewStore.from_url(f"sqlite:///{args.db}")
    await store.migrate()
    parts = build(settings, ModelClassifier.load(Path(args.model)), store)
    executor = ThreadPoolExecutor(max_workers=1)
    app, moderator = http_app(
        settings, parts, store, TokenRegistry.load(Path(args.tokens)), executor
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


def drawn(texts: list[str], count: int, offset: int) -> list[str]:
    return [texts[(n + offset) % len(texts)] for n in range(count)]


async def run(args: argparse.Namespace) -> int:
    from service.adapters.token_file import add_token  # noqa: PLC0415

    texts = realistic_texts()
    count = int(args.rate * args.seconds)
    json_headers = {"Content-Type": "application/json"}
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.json"
        key = add_token(tokens, "bench", "site", ["herald"])
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
            base = f"http://127.0.0.1:{port}/v1alpha1"
            every: dict[str, dict[str, object]] = {a: {} for a in (*ATTRIBUTES, "SPAM")}
            not_stored = [
                json.dumps(
                    {
                        "comment": {"text": text},
                        "requestedAttributes": every,
                        "languages": ["en"],
                        "doNotStore": True,
                    }
                ).encode()
                for text in drawn(texts, count, 0)
            ]
            stored = [
                json.dumps(
                    {
                        "comment": {"text": text},
                        "requestedAttributes": every,
                        "clientToken": f"bench-{n}",
                    }
                ).encode()
                for n, text in enumerate(drawn(texts, count, 3))
            ]
            suggestions = [
                json.dumps(
                    {
                        "comment": {"text": text},
                        "attributeScores": {"TOXICITY": {"summaryScore": {"value": n % 2}}},
                        "clientToken": f"bench-s-{n}",
                    }
                ).encode()
                for n, text in enumerate(drawn(texts, count, 7))
            ]
            rows = []
            for name, path, bodies in (
                ("analyze, doNotStore: true", "comments:analyze", not_stored),
                ("analyze, stored and moderated", "comments:analyze", stored),
                ("suggestscore (a label)", "comments:suggestscore", suggestions),
            ):
                latencies, statuses = await offer(
                    f"{base}/{path}?key={key}", [(b, json_headers) for b in bodies], args.rate
                )
                rows.append((name, latencies, statuses))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)
    print(f"offered {args.rate:g} requests/s for {args.seconds:g} s each, model {args.model}")
    print("| request | requests | p50 ms | p95 ms | p99 ms | max ms | statuses |")
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
    parser.add_argument("--model", default=str(ROOT / ".state" / "model"))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    return asyncio.run(serve(args) if args.mode == "serve" else run(args))


if __name__ == "__main__":
    sys.exit(main())
