"""The helpers that let a stop interrupt waits in the Kafka adapters."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.adapters.kafka_support import (
    Backoff,
    retry_later,
    sleep_unless_stopped,
    unless_stopped,
)


async def test_work_that_ends_first_runs_to_its_end() -> None:
    done: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0)
        done.append("work")

    assert await unless_stopped(asyncio.Event(), work())
    assert done == ["work"]


async def test_the_work_s_own_error_is_raised() -> None:
    async def work() -> None:
        raise LookupError("no such topic")

    with pytest.raises(LookupError, match="no such topic"):
        await unless_stopped(asyncio.Event(), work())


async def test_a_stop_cancels_the_work_and_says_so() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.create_task(unless_stopped(stop, wait_forever()))
    await started.wait()
    stop.set()
    assert await waiting is False
    assert cancelled.is_set()


async def test_a_stop_set_before_cancels_at_once() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await unless_stopped(stop, asyncio.Event().wait()) is False


async def test_sleep_ends_when_stopped() -> None:
    stop = asyncio.Event()
    sleeping = asyncio.create_task(sleep_unless_stopped(stop, 3600))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(sleeping, timeout=5)
    assert sleeping.done()


async def test_retry_later_says_why_and_how_long_and_a_stop_cuts_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    stop.set()
    logger = logging.getLogger("test.retry")
    with caplog.at_level(logging.WARNING, logger="test.retry"):
        await asyncio.wait_for(
            retry_later(stop, Backoff(30.0, 60.0), logger, "topic missing", extra={"topic": "c"}),
            timeout=5,
        )
    [record] = caplog.records
    assert record.getMessage() == "topic missing"
    assert record.__dict__["topic"] == "c"
    assert 0 < record.__dict__["retry_in_seconds"] <= 60
