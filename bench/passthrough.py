"""The transport limit: a bare transactional consume -> produce copy, no parsing, no scoring.

    python -m bench.passthrough --source T --target T --group G --transactional-id ID

It uses the service's Kafka settings (read_committed consumer, `getmany` of up to 500
records, idempotent transactional producer with acks=all, linger 5 ms and 512 KiB batches (the
constants in service/adapters/kafka_support.py), one transaction per
batch holding the copies and the consumer offsets), so the only difference from
`moderation serve` is the work done on each record. Runs until SIGTERM, or `--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP
from service.adapters.kafka_support import PRODUCER_BATCH_BYTES, PRODUCER_LINGER_MS


async def copy(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        transactional_id=args.transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=PRODUCER_LINGER_MS,
        max_batch_size=PRODUCER_BATCH_BYTES,
    )
    consumer = AIOKafkaConsumer(
        args.source,
        bootstrap_servers=BOOTSTRAP,
        group_id=args.group,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
    )
    copied = 0
    deadline = time.monotonic() + args.max_seconds
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=args.batch)
            if not batch:
                continue
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            async with producer.transaction():
                for records in batch.values():
                    for r in records:
                        await producer.send(args.target, r.value, key=r.key)
                await producer.send_offsets_to_transaction(offsets, args.group)
            copied += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
        await producer.stop()
    print(f"copied {copied}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    return asyncio.run(copy(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
