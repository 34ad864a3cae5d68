"""The review API alone, as `moderation serve` builds it, over a given store; for the API bench.

    python -m bench.review_server --database-url URL --tokens FILE --port P [--max-seconds S]

No Kafka: the outbox fills and is not relayed. Stops on SIGTERM or after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from service.adapters.metrics import PrometheusMetrics
from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import TokenRegistry
from service.bootstrap import SystemClock
from service.entrypoints.http.app import app_runner, build_app
from service.usecases.review_service import ReviewService


async def serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = SqlReviewStore.from_url(args.database_url)
    await store.migrate()
    metrics = PrometheusMetrics()
    review = ReviewService(
        store,
        SystemClock(),
        decisions_topic="bench-unused",
        claim_lease=timedelta(seconds=600),
        metrics=metrics,
    )
    app = build_app(review, TokenRegistry.load(args.tokens), metrics=metrics.registry)
    runner = app_runner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        print("listening", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    finally:
        await runner.cleanup()
        await store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    return asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
