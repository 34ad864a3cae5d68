"""The Kafka edge of reports and appeals: `comment-reports` and `comment-appeals`.

At least once, made exactly-once in effect by the store: every record is applied (an
idempotent write) or dead-lettered (delivery awaited) before its offset is committed, so a
crash re-reads it and changes nothing. The consumer group is the pipeline's with a
`-feedback` suffix, so instances share the work the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord

from service.adapters.kafka_support import (
    Backoff,
    retry_later,
    source_record,
    unless_stopped,
)
from service.contracts.codec import SourceRecord, encode_dead_letter, unreadable_record
from service.domain.errors import InvalidComment, StoreUnavailable
from service.domain.feedback import FeedbackKind
from service.usecases.feedback import FeedbackHandler
from service.usecases.ports import Clock, PipelineMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    bootstrap: str
    reports_topic: str
    appeals_topic: str
    group_id: str  # already suffixed
    dead_letter_topic: str
    client_id: str = "moderation-feedback"
    batch_max_records: int = 200
    poll_timeout_ms: int = 500
    retry_max_seconds: float = 30.0


class FeedbackConsumer:
    def __init__(
        self,
        config: FeedbackConfig,
        handler: FeedbackHandler,
        clock: Clock,
        stop: asyncio.Event,
        *,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self._config = config
        self._handler = handler
        self._clock = clock
        self._stop = stop
        self._metrics = metrics
        self._backoff = Backoff(0.5, config.retry_max_seconds)
        self._kinds = {
            config.reports_topic: FeedbackKind.REPORT,
            config.appeals_topic: FeedbackKind.APPEAL,
        }

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                # Stopping may cancel the session anywhere (even while the client waits for
                # metadata): nothing is lost, since offsets are committed only after their
                # records were applied or dead-lettered.
                await unless_stopped(self._stop, self._session())
            except UnknownTopicOrPartitionError:
                await self._retry(
                    "feedback topics missing: create them with `moderation create-topics`",
                    extra={"topics": sorted(self._kinds)},
                )
            except (KafkaError, OSError, StoreUnavailable) as exc:
                await self._retry(
                    "feedback consumer cannot proceed, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )

    async def _retry(self, event: str, *, extra: dict[str, object]) -> None:
        if self._metrics is not None:
            self._metrics.retried("feedback")
        await retry_later(self._stop, self._backoff, log, event, extra=extra)

    async def _session(self) -> None:
        cfg = self._config
        consumer = AIOKafkaConsumer(
            *self._kinds,
            bootstrap_servers=cfg.bootstrap,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            client_id=f"{cfg.client_id}-consumer",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id=f"{cfg.client_id}-dlq",
        )
        try:
            await producer.start()
            await consumer.start()
            log.info("consuming feedback", extra={"topics": sorted(self._kinds)})
            while not self._stop.is_set():
                try:
                    batch = await consumer.getmany(
                        timeout_ms=cfg.poll_timeout_ms, max_records=cfg.batch_max_records
                    )
                except UnicodeDecodeError:  # a header key that is not UTF-8, see below
                    await self._one_by_one(consumer, producer)
                    continue
                if not batch:
                    continue
                offsets: dict[TopicPartition, int] = {}
                for tp, records in batch.items():
                    for record in records:
                        await self._one(producer, record)
                        offsets[tp] = record.offset + 1
                await consumer.commit(offsets)
                self._backoff.reset()
        finally:
            for client in (consumer, producer):
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    await asyncio.wait_for(client.stop(), timeout=10)

    async def _one_by_one(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """aiokafka decodes header keys as UTF-8 while fetching, so one record whose header
        key is not cannot be read at all, and the failed fetch leaves the group's consumer
        unable to fetch that partition again. A reader of its own reads each partition one
        record at a time from the committed offset: the readable records are applied, the
        unreadable one is dead-lettered by its position (its bytes stay in the topic), and
        the offset is committed after each; then the consumer goes on from there."""
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._config.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id=f"{self._config.client_id}-reader",
        )
        await reader.start()
        try:
            for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition)):
                start = await consumer.committed(tp)
                if start is None:
                    start = (await reader.beginning_offsets([tp]))[tp]
                end = (await reader.end_offsets([tp]))[tp]
                reader.assign([tp])
                reader.seek(tp, start)
                position = start
                while position < end and not self._stop.is_set():
                    try:
                        got = await reader.getmany(
                            tp, timeout_ms=self._config.poll_timeout_ms, max_records=1
                        )
                    except UnicodeDecodeError:
                        await self._dead_letter(
                            producer, *unreadable_record(tp.topic, tp.partition, position)
                        )
                        position += 1
                        reader.seek(tp, position)
                        await consumer.commit({tp: position})
                        continue
                    for record in got.get(tp, ()):
                        await self._one(producer, record)
                        position = record.offset + 1
                        await consumer.commit({tp: position})
                    if not got:
                        position = await reader.position(tp)  # past transaction markers
                consumer.seek(tp, position)
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(reader.stop(), timeout=10)

    async def _one(self, producer: AIOKafkaProducer, record: ConsumerRecord) -> None:
        source = source_record(record)
        result = await self._handler.handle(self._kinds[source.topic], source)
        if result.error is None:
            return
        await self._dead_letter(producer, source, result.error)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, source: SourceRecord, error: InvalidComment
    ) -> None:
        value, headers = encode_dead_letter(source, error, self._clock.now())
        delivery = await producer.send(
            self._config.dead_letter_topic, value, key=source.key, headers=headers
        )
        await delivery  # the record's offset is committed only once its dead letter is safe
        if self._metrics is not None:
            self._metrics.dead_lettered(error.reason.value)
        log.warning(
            "feedback dead-lettered",
            extra={
                "topic": source.topic,
                "partition": source.partition,
                "offset": source.offset,
                "reason": error.reason.value,
            },
        )
