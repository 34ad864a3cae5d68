"""The outbox relay: publishes moderator decisions written to the store's outbox.

A decision is committed to the database together with its outbox row; this relay sends the
row to Kafka and only then marks it sent. Kafka being down delays publication and loses
nothing. A crash between send and mark re-sends the row: consumers dedupe by `event_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from service.adapters.kafka_support import Backoff
from service.domain.errors import StoreUnavailable
from service.usecases.ports import Clock, OutboxStore, PipelineMetrics

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        bootstrap: str,
        clock: Clock,
        stop: asyncio.Event,
        *,
        batch: int = 200,
        poll_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
        client_id: str = "moderation-outbox",
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._bootstrap = bootstrap
        self._clock = clock
        self._stop = stop
        self._batch = batch
        self._poll_seconds = poll_seconds
        self._client_id = client_id
        self._wake = asyncio.Event()
        self._backoff = Backoff(0.5, retry_max_seconds)
        self.published = 0
        self.failures = 0

    def notify(self) -> None:
        """A decision was just written: publish now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._session()
            except (KafkaError, OSError, StoreUnavailable) as exc:
                self.failures += 1
                if self._metrics is not None:
                    self._metrics.retried("outbox")
                delay = self._backoff.next_delay()
                log.warning(
                    "outbox relay cannot publish, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_seconds": delay},
                )
                await self._idle(delay)

    async def _idle(self, seconds: float) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stop, wake}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, wake):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._wake.clear()

    async def _session(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id=self._client_id,
        )
        try:
            await producer.start()
            while not self._stop.is_set():
                if not await self.publish_once(producer):
                    await self._idle(self._poll_seconds)
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(producer.stop(), timeout=10)

    async def publish_once(self, producer: AIOKafkaProducer) -> int:
        """Send one batch of unsent rows and mark them sent; returns how many."""
        rows = await self._store.outbox_pending(self._batch)
        if not rows:
            return 0
        deliveries = [
            await producer.send(
                row.topic, row.value, key=row.key, headers=[("event_id", row.event_id.encode())]
            )
            for row in rows
        ]
        await asyncio.gather(*deliveries)
        await self._store.outbox_mark_sent([row.id for row in rows], now=self._clock.now())
        self._backoff.reset()
        self.published += len(rows)
        log.info("outbox published", extra={"records": len(rows)})
        return len(rows)
