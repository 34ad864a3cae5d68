"""Operator commands beside `serve`: topic creation and sample traffic."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiokafka import AIOKafkaProducer

from service.adapters import kafka_support
from service.settings import Settings

log = logging.getLogger(__name__)

# A few broken events, one per kind of mistake, for `feed --malformed`.
MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b'["an", "array"]',
    b'{"id": "m-1", "text": "no site"}',
    b'{"id": 42, "site_id": "demo", "text": "id is a number"}',
    b'{"id": "m-2", "site_id": "demo", "text": "bad time", "created_at": "yesterday"}',
    b'{"id": "m-3", "site_id": "demo", "text": "\xff\xfe not utf-8"}',
)


async def create_topics(settings: Settings, partitions: int) -> int:
    names = [
        settings.topic_comments,
        settings.topic_decisions,
        settings.topic_dlq,
        settings.topic_shadow,
        settings.topic_reports,
        settings.topic_appeals,
    ]
    created = await kafka_support.create_topics(settings.kafka_bootstrap, names, partitions)
    log.info("topics ready", extra={"topics": names, "created_topics": created})
    return 0


def _read_events(file: Path) -> list[tuple[bytes | None, bytes]]:
    values: list[tuple[bytes | None, bytes]] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            key = f"{event['site_id']}:{event['id']}".encode()
        except (ValueError, KeyError, TypeError) as exc:
            log.error("skipping bad sample line", extra={"line": number, "error": str(exc)})  # noqa: TRY400
            continue
        values.append((key, line.encode("utf-8")))
    return values


async def feed(settings: Settings, file: Path, *, malformed: bool) -> int:
    values = _read_events(file)
    if malformed:
        values.extend((None, value) for value in MALFORMED)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for key, value in values:
            await producer.send(settings.topic_comments, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    log.info("fed", extra={"topic": settings.topic_comments, "events": len(values)})
    return 0
