"""`replay` against the real broker: dead letters in, original bytes back on the comments
topic, read back with kcat."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from service.contracts.codec import SourceRecord, encode_dead_letter
from service.domain.errors import InvalidComment
from service.domain.errors import InvalidCommentReason as R
from service.entrypoints.cli.replay import REPLAYED_FROM, format_replay, replay
from service.settings import Settings
from tests.kafka_helpers import BOOTSTRAP, KafkaTopics, end_offsets

pytestmark = [pytest.mark.kafka]

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Original:
    key: bytes | None
    value: bytes
    reason: R
    headers: tuple[tuple[str, bytes], ...] = ()


# What a producer once sent, and why the pipeline refused it. Bytes that are not UTF-8 and a
# record without a key must come back exactly as they were.
ORIGINALS = (
    Original(b"herald:c-1", b"{not json", R.INVALID_JSON, (("trace-id", b"t-1"),)),
    Original(b"herald:c-2", b'{"id": "c-2", "text": "no site"}', R.MISSING_FIELD),
    Original(None, b'{"id": "c-3", "site_id": "herald", "text": "\xff\xfe"}', R.INVALID_UTF8),
    Original(b"tech:c-4", b'{"id": "c-4", "site_id": "tech"}', R.MISSING_FIELD),
    Original(b"tech:c-5", b"[1, 2]", R.NOT_AN_OBJECT),
    Original(b"city:c-6", b'{"id": "c-6", "text": "no site either"}', R.MISSING_FIELD),
)


@dataclass(frozen=True)
class Placed:
    original: Original
    partition: int
    offset: int


async def fill_dlq(topics: KafkaTopics) -> list[Placed]:
    """Dead letters as the pipeline writes them, plus one record that is not a dead letter."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    placed = []
    try:
        for n, original in enumerate(ORIGINALS):
            source = SourceRecord(
                topic=topics.comments,
                partition=n % 3,
                offset=100 + n,
                timestamp_ms=1_764_237_600_000,
                key=original.key,
                value=original.value,
                headers=original.headers,
            )
            body, headers = encode_dead_letter(
                source, InvalidComment(original.reason, f"detail {n}"), T0
            )
            meta = await producer.send_and_wait(topics.dlq, body, key=original.key, headers=headers)
            placed.append(Placed(original, meta.partition, meta.offset))
        await producer.send_and_wait(topics.dlq, b"not a dead letter", key=b"junk")
    finally:
        await producer.stop()
    return placed


def settings_for(topics: KafkaTopics, tmp_path: Path) -> Settings:
    return Settings.from_env(topics.env() | {"MODERATION_STATE_DIR": str(tmp_path)})


@dataclass(frozen=True)
class Raw:
    key: bytes
    value: bytes
    headers: dict[str, str]


def kcat_raw(topic: str) -> list[Raw]:
    """Every record's key and value as bytes, and its headers (kcat prints the lengths and
    the headers on one line, then the bytes): the -J envelope cannot carry non-UTF-8 values."""
    out = subprocess.run(
        [
            *("kcat", "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e", "-q"),
            *("-X", "isolation.level=read_committed", "-f", "%K %S %h\n%k%s\n"),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    ).stdout
    records = []
    at = 0
    while at < len(out):
        line_end = out.index(b"\n", at)
        key_len, value_len, headers = out[at:line_end].decode().split(" ", 2)
        start = line_end + 1
        stop = start + max(0, int(key_len)) + max(0, int(value_len))
        key = out[start : start + max(0, int(key_len))]
        assert out[stop : stop + 1] == b"\n"
        pairs = (h.split("=", 1) for h in headers.split(",") if h)
        records.append(Raw(key, out[start + len(key) : stop], dict(pairs)))
        at = stop + 1
    return records


async def test_dry_run_lists_exactly_the_matching_dead_letters_and_publishes_nothing(
    topics: KafkaTopics, tmp_path: Path
) -> None:
    placed = await fill_dlq(topics)
    missing = {(p.partition, p.offset) for p in placed if p.original.reason is R.MISSING_FIELD}

    report = await replay(
        settings_for(topics, tmp_path), reason="missing_field", dry_run=True, limit=None
    )

    assert report.dry_run
    assert report.scanned == len(ORIGINALS) + 1
    assert len(report.unreadable) == 1
    assert {(i.partition, i.offset) for i in report.selected} == missing
    assert {i.reason for i in report.selected} == {"missing_field"}
    assert report.published == 0
    assert sum((await end_offsets(topics.comments)).values()) == 0
    text = format_replay(report)
    assert "would replay 3" in text
    for partition, offset in missing:
        assert f"dlq:{partition}:{offset}" in text


async def test_replay_republishes_the_original_bytes_with_where_they_came_from(
    topics: KafkaTopics, tmp_path: Path
) -> None:
    placed = await fill_dlq(topics)
    chosen = [p for p in placed if p.original.reason in (R.INVALID_JSON, R.INVALID_UTF8)]
    settings = settings_for(topics, tmp_path)

    json_report = await replay(settings, reason="invalid_json", dry_run=False, limit=None)
    utf8_report = await replay(settings, reason="invalid_utf8", dry_run=False, limit=None)

    assert json_report.published == 1
    assert utf8_report.published == 1
    raw = kcat_raw(topics.comments)
    expected = [(p.original.key or b"", p.original.value) for p in chosen]
    assert sorted((r.key, r.value) for r in raw) == sorted(expected)
    by_origin = {r.headers[REPLAYED_FROM]: r.headers for r in raw}
    assert set(by_origin) == {f"dlq:{p.partition}:{p.offset}" for p in chosen}
    [json_one] = [p for p in chosen if p.original.reason is R.INVALID_JSON]
    origin = by_origin[f"dlq:{json_one.partition}:{json_one.offset}"]
    assert origin["trace-id"] == "t-1"  # the producer's own header survives the round trip
    assert not any(name.startswith("moderation.error") for name in origin)


async def test_limit_caps_what_is_replayed(topics: KafkaTopics, tmp_path: Path) -> None:
    placed = await fill_dlq(topics)
    missing = {(p.partition, p.offset) for p in placed if p.original.reason is R.MISSING_FIELD}

    report = await replay(
        settings_for(topics, tmp_path), reason="missing_field", dry_run=False, limit=2
    )

    assert len(report.selected) == 2
    assert {(i.partition, i.offset) for i in report.selected} <= missing
    assert report.published == 2
    assert sum((await end_offsets(topics.comments)).values()) == 2


async def test_no_reason_selects_every_dead_letter(topics: KafkaTopics, tmp_path: Path) -> None:
    placed = await fill_dlq(topics)

    report = await replay(settings_for(topics, tmp_path), reason=None, dry_run=True, limit=None)

    assert {(i.partition, i.offset) for i in report.selected} == {
        (p.partition, p.offset) for p in placed
    }
    assert [i.key for i in report.selected if i.key is None] == [None]  # the keyless one


async def test_dead_feedback_is_replayed_to_the_topic_it_came_from(
    topics: KafkaTopics, tmp_path: Path
) -> None:
    report = b'{"comment_id": "late", "site_id": "herald", "reporter_id": "r", "reason": "x"}'
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for topic, value in ((topics.reports, report), (topics.comments, b"{")):
            body, headers = encode_dead_letter(
                SourceRecord(topic, 0, 7, None, b"herald:late", value),
                InvalidComment(R.UNKNOWN_COMMENT, "no decided comment herald:late"),
                T0,
            )
            await producer.send_and_wait(topics.dlq, body, key=b"herald:late", headers=headers)
    finally:
        await producer.stop()

    done = await replay(
        settings_for(topics, tmp_path), reason="unknown_comment", dry_run=False, limit=None
    )

    assert done.published == 2
    assert [r.value for r in kcat_raw(topics.reports)] == [report]
    assert [r.value for r in kcat_raw(topics.comments)] == [b"{"]
    assert f"-> {topics.reports}" in format_replay(done)
