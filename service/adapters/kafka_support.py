"""What every Kafka client of the service shares: backoff, waits that end when the process
stops, the broker-independent view of a consumed record, and creating topics. The pipeline and
feedback loops (service/entrypoints/kafka/) and the outbox relay use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Sequence
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from service.contracts.codec import SourceRecord
from service.domain.errors import ModerationError

# The pipeline's transactional producer (and the passthrough benchmark, which must match it):
# sends wait up to 5 ms to fill a batch, and one partition's batch may hold 512 KiB. aiokafka's
# default of 16 KiB holds a few dozen decisions, so one 500-comment transaction was cut into many
# produce requests, each a socket write and a response handled in Python (BENCHMARKS.md).
# 512 KiB stays under the broker's default `message.max.bytes` and aiokafka's
# `max_request_size` (1 MiB each).
PRODUCER_LINGER_MS: Final = 5
PRODUCER_BATCH_BYTES: Final = 512 * 1024


class FatalKafkaError(ModerationError):
    """A state that retrying cannot mend (e.g. another instance took our transactional id)."""


class Backoff:
    """Exponential backoff with full jitter, capped."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self._initial = initial
        self._cap = cap
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._initial * 2.0**self._attempt)
        self._attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def source_record(record: ConsumerRecord[bytes, bytes]) -> SourceRecord:
    """The broker-independent view of a consumed record that the codec and DLQ use."""
    return SourceRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
    )


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for ``seconds``, or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def retry_later(
    stop: asyncio.Event,
    backoff: Backoff,
    logger: logging.Logger,
    event: str,
    *,
    extra: dict[str, object],
) -> None:
    """Say why a consumer retries and after how long, then wait that long (or until ``stop``)."""
    delay = backoff.next_delay()
    logger.warning(event, extra={**extra, "retry_in_seconds": round(delay, 2)})
    await sleep_unless_stopped(stop, delay)


async def unless_stopped(stop: asyncio.Event, work: Awaitable[object]) -> bool:
    """Await ``work``, cancelling it if ``stop`` is set first.

    True if ``work`` ran to its end (its own error is raised), False if it was cancelled.
    Callers use it only where a cancellation loses nothing.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()
    return True


async def create_topics(
    bootstrap: str, topics: Sequence[str], partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                await admin.create_topics(
                    [NewTopic(t, partitions, replication_factor) for t in missing]
                )
        return missing
    finally:
        await admin.close()
