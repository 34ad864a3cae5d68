"""The Kafka edge: one transaction per batch of consume -> transform -> produce.

For each batch from `getmany`, the decisions, the dead letters and the consumer offsets are
written in one Kafka transaction. A crash before the commit aborts all three, the batch is
read again from the last committed offsets, and read_committed readers never see the
aborted copy. Any Kafka failure tears the session down and rebuilds it with backoff, which
also rewinds the consumer to the committed offsets.

While batches keep coming, batch N's commit runs while batch N+1 is decoded and scored (see
`_run_batches`); transactions still commit one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    IllegalStateError,
    KafkaError,
    ProducerFenced,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import ConsumerRecord

from service.adapters.kafka_support import (
    PRODUCER_BATCH_BYTES,
    PRODUCER_LINGER_MS,
    Backoff,
    FatalKafkaError,
    retry_later,
    source_record,
    unless_stopped,
)
from service.contracts.codec import encode_dead_letter, unreadable_record
from service.domain.errors import (
    InvalidCommentReason,
    StoreUnavailable,
)
from service.usecases.pipeline import BatchOutcome, Pipeline
from service.usecases.ports import Clock, DecisionLog, PipelineMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap: str
    topic: str
    group_id: str
    transactional_id: str
    dead_letter_topic: str = "comments-dlq"
    batch_max_records: int = 500
    poll_timeout_ms: int = 500
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    session_timeout_ms: int = 10_000
    close_timeout_seconds: float = 10.0


Batch = Mapping[TopicPartition, Sequence[ConsumerRecord]]


@dataclass(frozen=True, slots=True)
class _Computed:
    """A decided batch, ready to commit."""

    outcome: BatchOutcome
    offsets: dict[TopicPartition, int]
    records: int
    processing: float


class _Gate:
    """Held while batches are in hand; a rebalance waits for it, and says it is waiting so
    that the pipeline stops taking new batches and lets it through."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


class _FinishBatchBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only after the batches in hand have committed, so the next owner
    starts from offsets that include them."""

    def __init__(
        self, gate: _Gate, assignment: set[TopicPartition], metrics: PipelineMetrics
    ) -> None:
        self._gate = gate
        self._assignment = assignment
        self._metrics = metrics

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._gate.waiting += 1
        try:
            async with self._gate.lock:
                self._assignment.difference_update(revoked)
                for tp in revoked:
                    self._metrics.partitions_revoked(tp.topic, [tp.partition])
                log.info("partitions revoked", extra={"partitions": _names(revoked)})
        finally:
            self._gate.waiting -= 1

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._assignment.update(assigned)
        log.info("partitions assigned", extra={"partitions": _names(assigned)})


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


class KafkaPipelineRunner:
    def __init__(
        self,
        config: KafkaConfig,
        pipeline: Pipeline,
        executor: Executor,
        stop: asyncio.Event,
        *,
        store: DecisionLog,
        metrics: PipelineMetrics,
        clock: Clock,
    ) -> None:
        self._config = config
        self._pipeline = pipeline
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._executor = executor
        self._stop = stop
        self._gate = _Gate()
        self._assignment: set[TopicPartition] = set()
        self._connected = False
        self._backoff = Backoff(config.retry_initial_seconds, config.retry_max_seconds)

    @property
    def consuming(self) -> bool:
        """Connected, in the group, and holding partitions (another instance of the group
        may hold them all: then this one is idle, which is not a fault)."""
        return self._connected

    @property
    def partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self._assignment)

    async def run(self) -> None:
        """Consume until `stop` is set. Transient Kafka failures are retried forever, with
        backoff; only `FatalKafkaError` ends the run early."""
        while not self._stop.is_set():
            try:
                await self._session()
            except ProducerFenced as exc:
                raise FatalKafkaError(
                    f"transactional id {self._config.transactional_id!r} was taken over by "
                    "another instance; give every instance its own MODERATION_INSTANCE_ID"
                ) from exc
            except UnknownTopicOrPartitionError:
                await self._retry(
                    "comments topic missing: create it with `moderation create-topics`",
                    extra={"topic": self._config.topic},
                )
            except StoreUnavailable as exc:
                await self._retry("review store unavailable, retrying", extra={"error": str(exc)})
            except (KafkaError, OSError) as exc:
                await self._retry(
                    "kafka unavailable, retrying",
                    extra={
                        "bootstrap": self._config.bootstrap,
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )

    async def _retry(self, event: str, *, extra: dict[str, object]) -> None:
        self._metrics.retried("pipeline")
        await retry_later(self._stop, self._backoff, log, event, extra=extra)

    async def _session(self) -> None:
        cfg = self._config
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap,
            transactional_id=cfg.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=PRODUCER_LINGER_MS,
            max_batch_size=PRODUCER_BATCH_BYTES,
            client_id=f"{cfg.transactional_id}-producer",
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=cfg.session_timeout_ms,
            client_id=f"{cfg.transactional_id}-consumer",
        )
        try:
            await producer.start()
            consumer.subscribe(
                [cfg.topic],
                listener=_FinishBatchBeforeRevoke(self._gate, self._assignment, self._metrics),
            )
            # A consumer start waits up to the request timeout (40 s) for the metadata of a
            # missing topic; nothing is consumed yet, so a stop may cancel it.
            if not await unless_stopped(self._stop, consumer.start()):
                return
            self._connected = True
            log.info(
                "consuming",
                extra={"topic": cfg.topic, "group_id": cfg.group_id, "bootstrap": cfg.bootstrap},
            )
            poison: dict[TopicPartition, int] = {}
            while not self._stop.is_set():
                try:
                    batch = await self._next_batch(consumer, producer, poison)
                except UnicodeDecodeError:
                    poison = await self._find_unreadable(consumer)
                    continue
                if batch:
                    async with self._gate.lock:
                        unreadable = await self._run_batches(
                            consumer, producer, batch, more=not poison
                        )
                    self._backoff.reset()
                    if unreadable:
                        poison = await self._find_unreadable(consumer)
                await self._report_lag(consumer)
        finally:
            self._connected = False
            self._assignment.clear()
            await self._close("consumer", consumer.stop)
            await self._close("producer", producer.stop)

    async def _next_batch(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        poison: dict[TopicPartition, int],
    ) -> Batch:
        """The next batch; around an unreadable record, the records before it, then the
        unreadable one dead-lettered on its own."""
        cfg = self._config
        for tp, bad in list(poison.items()):
            if tp not in consumer.assignment():
                del poison[tp]
                continue
            position = await consumer.position(tp)
            if position < bad:
                before: Batch = await consumer.getmany(
                    tp,
                    timeout_ms=cfg.poll_timeout_ms,
                    max_records=min(bad - position, cfg.batch_max_records),
                )
                return before
            async with self._gate.lock:
                await self._dead_letter_unreadable(producer, tp, bad)
            consumer.seek(tp, bad + 1)
            del poison[tp]
            return {}
        batch: Batch = await consumer.getmany(
            timeout_ms=cfg.poll_timeout_ms, max_records=cfg.batch_max_records
        )
        return batch

    async def _find_unreadable(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """aiokafka decodes header keys as UTF-8 while fetching, so a record whose header key
        is not UTF-8 cannot be read at all, and a failed fetch may have moved positions past
        records it never returned. Rewind every partition to its committed offset, find the
        unreadable record of each by reading one record at a time, and rewind again."""
        poison: dict[TopicPartition, int] = {}
        for tp in sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition)):
            start = await consumer.committed(tp)
            if start is None:
                start = (await consumer.beginning_offsets([tp]))[tp]
            consumer.seek(tp, start)
            while True:
                offset = await consumer.position(tp)
                try:
                    got = await consumer.getmany(
                        tp, timeout_ms=self._config.poll_timeout_ms, max_records=1
                    )
                except UnicodeDecodeError:
                    poison[tp] = offset
                    break
                if not got:
                    break
            consumer.seek(tp, start)
        log.error(
            "unreadable records found",
            extra={"records": {f"{tp.topic}[{tp.partition}]": o for tp, o in poison.items()}},
        )
        return poison

    async def _dead_letter_unreadable(
        self, producer: AIOKafkaProducer, tp: TopicPartition, offset: int
    ) -> None:
        source, error = unreadable_record(tp.topic, tp.partition, offset)
        value, headers = encode_dead_letter(source, error, self._clock.now())
        try:
            async with producer.transaction():
                delivery = await producer.send(
                    self._config.dead_letter_topic, value, headers=headers
                )
                await delivery  # a refused record must abort the transaction, not vanish
                await producer.send_offsets_to_transaction({tp: offset + 1}, self._config.group_id)
        except BaseException:
            self._metrics.transaction_aborted()
            raise
        self._metrics.dead_lettered(InvalidCommentReason.INVALID_UTF8.value)
        log.warning(
            "dead-lettered",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": offset,
                "reason": InvalidCommentReason.INVALID_UTF8.value,
            },
        )

    async def _close(self, what: str, stop: Callable[[], Awaitable[None]]) -> None:
        try:
            await asyncio.wait_for(stop(), timeout=self._config.close_timeout_seconds)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning(
                "kafka client did not close cleanly", extra={"client": what, "error": str(exc)}
            )

    async def _run_batches(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, first: Batch, *, more: bool
    ) -> bool:
        """Process batches while they keep coming, with batch N's commit (store write, then
        the Kafka transaction) running while batch N+1 is decoded and scored. Batch N+1 reads
        the store's history only once batch N is stored, and its transaction starts only once
        batch N's has committed: one transaction at a time, in order. Returns with nothing in
        flight, when no batch is ready, on stop, when a rebalance waits, or (True) when the
        next fetch met an unreadable record. Called with the gate's lock held."""
        batch = first
        stored: asyncio.Task[None] | None = None
        committing: asyncio.Task[None] | None = None
        unreadable = False
        lag_reported = time.monotonic()
        try:
            while True:
                computed = await self._compute(batch, stored)
                if committing is not None:
                    await committing
                stored = asyncio.create_task(self._store.record_decisions(computed.outcome.stored))
                committing = asyncio.create_task(self._commit(producer, computed, stored))
                if not more or self._stop.is_set() or self._gate.waiting:
                    break
                if time.monotonic() - lag_reported >= 1.0:  # a backlog must show in the lag
                    await self._report_lag(consumer)
                    lag_reported = time.monotonic()
                try:
                    batch = await consumer.getmany(
                        timeout_ms=min(self._config.poll_timeout_ms, 100),
                        max_records=self._config.batch_max_records,
                    )
                except UnicodeDecodeError:
                    unreadable = True
                    break
                if not batch:
                    break
        except BaseException:
            if committing is not None:  # the batch in flight ends either way; this error wins
                with contextlib.suppress(Exception):
                    await committing
            raise
        if committing is not None:
            await committing
        return unreadable

    async def _compute(self, batch: Batch, stored: asyncio.Task[None] | None) -> _Computed:
        records = [source_record(m) for messages in batch.values() for m in messages]
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batch.items()}
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        prepared = await loop.run_in_executor(self._executor, self._pipeline.prepare, records)
        processing = time.perf_counter() - started
        if stored is not None:
            await stored  # the previous batch's comments are history for this one
        activity = await self._store.activity(prepared.query(self._clock.now()))
        started = time.perf_counter()
        outcome = await loop.run_in_executor(
            self._executor, self._pipeline.finish, prepared, activity
        )
        processing += time.perf_counter() - started
        return _Computed(outcome, offsets, len(records), processing)

    async def _commit(
        self, producer: AIOKafkaProducer, computed: _Computed, stored: asyncio.Task[None]
    ) -> None:
        # Stored before the transaction commits: a crash in between replays the batch, and the
        # store's idempotent upsert makes the replay harmless. A store failure aborts the batch
        # before anything is committed.
        await stored
        outcome, offsets = computed.outcome, computed.offsets
        try:
            async with producer.transaction():
                deliveries = [
                    await producer.send(
                        out.topic, out.value, key=out.key, headers=list(out.headers)
                    )
                    for out in outcome.records
                ]
                # Every record acknowledged before the offsets join the transaction: aiokafka
                # commits a transaction whose sends failed (e.g. across a broker restart), and
                # the decisions of that batch would be lost while its offsets commit.
                await asyncio.gather(*deliveries)
                await producer.send_offsets_to_transaction(offsets, self._config.group_id)
        except BaseException:
            self._metrics.transaction_aborted()
            raise
        log.debug(
            "batch committed",
            extra={
                "records": computed.records,
                "offsets": {f"{tp.topic}[{tp.partition}]": o for tp, o in offsets.items()},
            },
        )
        now = self._clock.now()
        latencies = [(now - c.created_at).total_seconds() for c in outcome.stored if c.created_at]
        self._metrics.batch_committed(outcome.counts(), computed.processing, latencies)
        self._log_dead_letters(outcome)

    def _log_dead_letters(self, outcome: BatchOutcome) -> None:
        for dead in outcome.dead:
            log.info(
                "dead-lettered",
                extra={
                    "topic": dead.source.topic,
                    "partition": dead.source.partition,
                    "offset": dead.source.offset,
                    "reason": dead.reason,
                },
            )

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in list(self._assignment):
            end = consumer.last_stable_offset(tp)
            if end is None:
                continue
            try:
                position = await consumer.position(tp)
            except (KafkaError, AssertionError, IllegalStateError):
                continue  # revoked meanwhile
            self._metrics.consumer_lag(tp.topic, tp.partition, end - position)
