"""Operator commands: `status` (what the service is behind on) and `replay` (send dead letters
back through the pipeline once their cause is fixed).

Both read Kafka and the review store directly, so they work whether or not an instance of the
service is running, and neither joins the service's consumer group.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from service.adapters.sql.store import SqlReviewStore
from service.contracts import codec
from service.domain.errors import ModerationError, StoreUnavailable
from service.domain.spot_check import SpotCheckEstimate, estimate
from service.settings import Settings
from service.usecases.ports import Clock

REPLAYED_FROM: Final = "moderation.replayed-from"
_KAFKA_TIMEOUT_SECONDS: Final = 20.0
_MODEL_METADATA: Final = "model.json"

Header = tuple[str, bytes]


class OpsError(ModerationError):
    """An operator command cannot do what it was asked; the message says why."""


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


# --- status -------------------------------------------------------------------------------


async def status(settings: Settings, *, clock: Clock | None = None) -> dict[str, Any]:
    """A JSON-ready snapshot: consumer lag per partition, the review queue per site, the
    outbox backlog, the model, policy and schema versions. A part that cannot be read
    carries an `error` instead of failing the whole report."""
    now = (clock or _UtcClock()).now()
    return {
        "checked_at": codec.rfc3339(now),
        "kafka": await _kafka_status(settings),
        "store": await _store_status(settings, now),
        "model": _model_status(settings.model_path),
        "policy_version": settings.policy.version,
        "event_schemas": [codec.COMMENT_SCHEMA, codec.DECISION_SCHEMA, codec.DEAD_LETTER_SCHEMA],
    }


async def _kafka_status(settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {
        "bootstrap": settings.kafka_bootstrap,
        "group_id": settings.group_id,
        "topic": settings.topic_comments,
    }
    try:
        partitions = await asyncio.wait_for(_consumer_lag(settings), timeout=_KAFKA_TIMEOUT_SECONDS)
    except (KafkaError, OSError, TimeoutError, OpsError) as exc:
        return report | {"error": _describe(exc)}
    return report | {
        "partitions": partitions,
        "total_lag": sum(p["lag"] for p in partitions),
    }


async def _consumer_lag(settings: Settings) -> list[dict[str, Any]]:
    topic = settings.topic_comments
    committed = await _committed_offsets(settings.kafka_bootstrap, settings.group_id, topic)
    async with _assigned_reader(settings.kafka_bootstrap, topic) as (consumer, partitions):
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    rows = []
    for tp in sorted(partitions, key=lambda p: p.partition):
        done = committed.get(tp.partition)
        # No committed offset yet: the group starts from the earliest record (the service
        # uses auto_offset_reset=earliest), so all that is there is lag.
        position = starts[tp] if done is None else max(done, starts[tp])
        rows.append(
            {
                "partition": tp.partition,
                "committed": done,
                "end": ends[tp],
                "lag": max(0, ends[tp] - position),
            }
        )
    return rows


async def _committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="moderation-ops")
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if tp.topic == topic and meta.offset >= 0
    }


@contextlib.asynccontextmanager
async def _assigned_reader(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A group-less read_committed consumer assigned every partition of `topic`."""
    partitions = await _partitions(bootstrap, topic)
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


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
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


async def _store_status(settings: Settings, now: datetime) -> dict[str, Any]:
    store = SqlReviewStore.from_url(settings.database_url)
    report: dict[str, Any] = {"dialect": store.dialect}
    try:
        schema_version = await store.schema_version()
        stats = await store.queue_stats(None)
        backlog = await store.outbox_backlog()
        spot = [estimate(c) for c in await store.spot_check_counts(None)]
    except StoreUnavailable as exc:
        return report | {"error": str(exc)}
    finally:
        await store.close()
    sites = [
        {
            "site_id": s.site_id,
            "depth": s.depth,
            "claimed": s.claimed,
            "oldest_queued_at": None
            if s.oldest_queued_at is None
            else codec.rfc3339(s.oldest_queued_at),
            "oldest_age_seconds": None
            if s.oldest_queued_at is None
            else max(0.0, round((now - s.oldest_queued_at).total_seconds(), 3)),
        }
        for s in stats
    ]
    return report | {
        "schema_version": schema_version,
        "review_queue": sites,
        "review_queue_total": sum(s.depth for s in stats),
        "outbox_backlog": backlog,
        "spot_checks": [spot_check_json(e) for e in spot],
    }


def spot_check_json(e: SpotCheckEstimate) -> dict[str, Any]:
    """One site's estimate for one automatic action, as status and the API give it."""
    return {
        "site_id": e.site_id,
        "auto_action": e.auto_action.value,
        "kind": e.kind,
        "checked": e.checked,
        "overturned": e.overturned,
        "waiting": e.waiting,
        "rate": e.rate,
        "low": None if e.interval is None else e.interval.low,
        "high": None if e.interval is None else e.interval.high,
    }


def _spot_line(e: dict[str, Any]) -> str:
    what = (
        "approvals a moderator would reject"
        if e["auto_action"] == "approve"
        else ("rejections a moderator would approve")
    )
    if e["rate"] is None:
        rate = "no verdict yet"
    else:
        rate = f"{e['rate']:.1%} (95% CI {e['low']:.1%} to {e['high']:.1%})"
    return (
        f"  site {e['site_id']:<24} {what}: {rate}  "
        f"{e['overturned']} of {e['checked']} checked, {e['waiting']} waiting"
    )


def _model_status(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"path": str(path)}
    try:
        metadata = json.loads((path / _MODEL_METADATA).read_text(encoding="utf-8"))
    except OSError as exc:
        return report | {"error": f"cannot read {_MODEL_METADATA}: {exc.strerror}"}
    except ValueError as exc:
        return report | {"error": f"{_MODEL_METADATA} is not valid JSON: {exc}"}
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model_version"), str):
        return report | {"error": f"{_MODEL_METADATA} names no model_version"}
    return report | {"version": metadata["model_version"]}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {_KAFKA_TIMEOUT_SECONDS:.0f}s"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, OpsError) else str(exc)


def format_status(report: dict[str, Any]) -> str:
    lines = [f"status at {report['checked_at']}"]
    kafka = report["kafka"]
    lines.append(f"kafka {kafka['bootstrap']}  group {kafka['group_id']}  topic {kafka['topic']}")
    if "error" in kafka:
        lines.append(f"  error: {kafka['error']}")
    else:
        for p in kafka["partitions"]:
            committed = "-" if p["committed"] is None else p["committed"]
            lines.append(
                f"  partition {p['partition']:>3}  committed {committed:>10}  "
                f"end {p['end']:>10}  lag {p['lag']:>8}"
            )
        lines.append(f"  total lag {kafka['total_lag']}")
    store = report["store"]
    lines.append(f"review store ({store['dialect']})")
    if "error" in store:
        lines.append(f"  error: {store['error']}")
    else:
        lines.append(f"  schema version {store['schema_version']}")
        lines.append(f"  outbox backlog {store['outbox_backlog']}")
        if not store["review_queue"]:
            lines.append("  review queue empty")
        for site in store["review_queue"]:
            age = site["oldest_age_seconds"]
            oldest = "-" if age is None else f"{age:.0f}s"
            lines.append(
                f"  site {site['site_id']:<24} waiting {site['depth']:>6}  "
                f"claimed {site['claimed']:>5}  oldest {oldest}"
            )
        if store["spot_checks"]:
            lines.append("  spot checks (automatic decisions checked by moderators)")
        lines.extend(_spot_line(e) for e in store["spot_checks"])
    model = report["model"]
    lines.append(f"model {model.get('version') or 'error: ' + model['error']}  ({model['path']})")
    lines.append(f"policy {report['policy_version']}")
    lines.append(f"event schemas {', '.join(report['event_schemas'])}")
    return "\n".join(lines)


# --- replay -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One dead letter selected for replay: where it is, why it failed, the original bytes."""

    partition: int
    offset: int
    reason: str
    detail: str
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    source_topic: str | None = None  # where it was read from: replayed back there

    @property
    def replayed_from(self) -> str:
        return f"dlq:{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    dlq_topic: str
    target_topic: str
    reason: str | None
    dry_run: bool
    scanned: int  # dead letters read, matching or not
    unreadable: tuple[str, ...]  # "partition:offset" of records that are not dead letters
    selected: tuple[ReplayItem, ...]
    published: int


async def replay(
    settings: Settings,
    *,
    reason: str | None,
    dry_run: bool,
    limit: int | None,
    idle_timeout_seconds: float = 30.0,
) -> ReplayReport:
    """Read the DLQ topic from its beginning to the end it has when we start; select the dead
    letters whose `reason` is `reason` (every one when None), at most `limit`; unless
    `dry_run`, publish each one's original key, value and headers to the topic it came from
    (the comments topic, or the reports or appeals topic for feedback) with
    a `moderation.replayed-from: dlq:<partition>:<offset>` header. Records the pipeline
    dead-letters again land after the end we read to, so a replay never feeds itself."""
    if limit is not None and limit < 1:
        raise OpsError("limit must be at least 1")
    scanned, unreadable, selected = await _select(settings, reason, limit, idle_timeout_seconds)
    published = 0
    if not dry_run and selected:
        published = await _publish(settings, selected)
    return ReplayReport(
        dlq_topic=settings.topic_dlq,
        target_topic=settings.topic_comments,
        reason=reason,
        dry_run=dry_run,
        scanned=scanned,
        unreadable=tuple(unreadable),
        selected=tuple(selected),
        published=published,
    )


async def read_to_end(
    bootstrap: str, topic: str, idle_timeout_seconds: float = 30.0
) -> AsyncGenerator[ConsumerRecord, None]:
    """Every committed record of `topic` up to its end offsets as of the start, partition by
    partition in offset order within each."""
    async with _assigned_reader(bootstrap, topic) as (consumer, partitions):
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


async def _select(
    settings: Settings, reason: str | None, limit: int | None, idle_timeout_seconds: float
) -> tuple[int, list[str], list[ReplayItem]]:
    scanned = 0
    unreadable: list[str] = []
    selected: list[ReplayItem] = []
    reader = read_to_end(settings.kafka_bootstrap, settings.topic_dlq, idle_timeout_seconds)
    async with contextlib.aclosing(reader) as records:  # a break still stops the consumer
        async for record in records:
            if limit is not None and len(selected) >= limit:
                break
            scanned += 1
            item = _dead_letter(record)
            if item is not None:
                item = replace(item, source_topic=_target(settings, item.source_topic))
            if item is None:
                unreadable.append(f"{record.partition}:{record.offset}")
            elif reason is None or item.reason == reason:
                selected.append(item)
    selected.sort(key=lambda i: (i.partition, i.offset))
    return scanned, unreadable, selected


def _dead_letter(record: ConsumerRecord) -> ReplayItem | None:
    """The replayable content of one DLQ record, or None if it is not a dead letter."""
    try:
        body = json.loads(record.value)
        if not isinstance(body, dict) or body.get("schema") != codec.DEAD_LETTER_SCHEMA:
            return None
        key = _unb64(body.get("key_base64"))
        value = _unb64(body.get("value_base64"))
        found_reason = body["reason"]
        detail = body.get("detail", "")
        source = body.get("source")
        source_topic = source.get("topic") if isinstance(source, dict) else None
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None
    if not isinstance(found_reason, str) or not isinstance(detail, str):
        return None
    # The DLQ kept the original headers beside its own `moderation.*` ones.
    headers = tuple(
        (name, bytes(data or b""))
        for name, data in (record.headers or ())
        if not name.startswith("moderation.")
    )
    return ReplayItem(
        record.partition,
        record.offset,
        found_reason,
        detail,
        key,
        value,
        headers,
        source_topic if isinstance(source_topic, str) else None,
    )


def _target(settings: Settings, source_topic: str | None) -> str:
    """Reports and appeals go back to their own topics; everything else to the comments."""
    if source_topic in (settings.topic_reports, settings.topic_appeals):
        return source_topic
    return settings.topic_comments


def _unb64(data: object) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise TypeError("base64 field is not a string")
    return base64.b64decode(data, validate=True)


async def _publish(settings: Settings, items: Sequence[ReplayItem]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="moderation-replay",
    )
    await producer.start()
    try:
        sent = [
            await producer.send(
                item.source_topic or settings.topic_comments,
                item.value,
                key=item.key,
                headers=[*item.headers, (REPLAYED_FROM, item.replayed_from.encode())],
            )
            for item in items
        ]
        await producer.flush()
        for delivery in sent:
            await delivery  # raises if the broker refused it
    finally:
        await producer.stop()
    return len(sent)


def format_replay(report: ReplayReport) -> str:
    what = "would replay" if report.dry_run else "replayed"
    reason = report.reason or "any reason"
    lines = [
        f"{report.dlq_topic} -> {report.target_topic}  ({reason}): read {report.scanned} "
        f"dead letters, {what} {len(report.selected)}"
        + ("" if report.dry_run else f", published {report.published}")
    ]
    for item in report.selected:
        size = "no value" if item.value is None else f"{len(item.value)} bytes"
        to = "" if item.source_topic in (None, report.target_topic) else f" -> {item.source_topic}"
        lines.append(
            f"  {item.replayed_from}  {item.reason:<20} {size:>12}  {item.detail[:80]}{to}"
        )
    if report.unreadable:
        lines.append(
            f"  skipped {len(report.unreadable)} records that are not dead letters: "
            + ", ".join(report.unreadable[:10])
            + (" ..." if len(report.unreadable) > 10 else "")
        )
    return "\n".join(lines)
