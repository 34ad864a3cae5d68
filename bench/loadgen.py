"""Offer comments to a topic at a fixed rate, each with `created_at` = the moment it is sent.

    python -m bench.loadgen --topic T --rate 1000 --seconds 15 --prefix P

Comment ids are `P-<n>-<created_at in µs since the epoch>`, so a reader of the decisions can
compute the latency from the decision alone. Sends in 5 ms ticks; prints what it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from bench.common import BOOTSTRAP, comment_event, realistic_texts


async def offer(args: argparse.Namespace) -> int:
    texts = realistic_texts()
    rng = random.Random(args.rate)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=1)
    await producer.start()
    sent = 0
    total = int(args.rate * args.seconds)
    try:
        start = time.monotonic()
        while sent < total:
            elapsed = time.monotonic() - start
            if elapsed > args.seconds * 3:  # cannot keep up at all: stop, say so below
                break
            due = min(total, int(args.rate * elapsed) + 1)
            while sent < due:
                now = datetime.now(UTC)
                micros = time.time_ns() // 1000
                key, value = comment_event(texts, rng, f"{args.prefix}-{sent}-{micros}", now)
                await producer.send(args.topic, value, key=key)
                sent += 1
            await asyncio.sleep(0.005)
        await producer.flush()
        took = time.monotonic() - start
    finally:
        await producer.stop()
    print(f"sent {sent} in {took:.2f}s = {sent / took:.0f}/s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--prefix", required=True)
    return asyncio.run(offer(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
