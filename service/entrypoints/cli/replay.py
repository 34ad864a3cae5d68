"""`moderation replay`: send dead letters back through the pipeline once their cause is fixed.

It reads the dead-letter topic directly, so it works whether or not an instance of the service
is running, and never joins the service's consumer group.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from service.contracts import codec
from service.entrypoints.cli.topic_reader import OpsError, read_to_end
from service.settings import Settings

REPLAYED_FROM: Final = "moderation.replayed-from"

Header = tuple[str, bytes]


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
