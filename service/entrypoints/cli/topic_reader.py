"""Reading a topic from outside the service, as the operator commands do: a group-less
read_committed consumer that joins no consumer group and commits nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from service.domain.errors import ModerationError


class OpsError(ModerationError):
    """An operator command cannot do what it was asked; the message says why."""


@contextlib.asynccontextmanager
async def assigned_reader(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A group-less read_committed consumer assigned every partition of `topic`."""
    partitions = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        client_id="moderation-ops",
    )
    try:
        await consumer.start()
        consumer.assign(partitions)
        yield consumer, partitions
    finally:
        # aiokafka 0.14: stopping a group-less consumer before its background task has had
        # one turn re-raises that task's CancelledError. Give it the turn.
        await asyncio.sleep(0)
        await consumer.stop()


async def topic_partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="moderation-ops")
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code") or not described.get("partitions"):
        raise OpsError(f"topic {topic!r} does not exist")
    return sorted(
        (TopicPartition(topic, p["partition"]) for p in described["partitions"]),
        key=lambda tp: tp.partition,
    )


async def read_to_end(
    bootstrap: str, topic: str, idle_timeout_seconds: float = 30.0
) -> AsyncGenerator[ConsumerRecord, None]:
    """Every committed record of `topic` up to its end offsets as of the start, partition by
    partition in offset order within each."""
    async with assigned_reader(bootstrap, topic) as (consumer, partitions):
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        last_progress = time.monotonic()
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    yield record
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout_seconds:
                raise OpsError(
                    f"no records from {topic} for {idle_timeout_seconds:.0f}s "
                    "before its end offsets were reached"
                )
            # read_committed: positions can jump past transaction markers, so ask, not count
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
