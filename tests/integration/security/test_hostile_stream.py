"""Hostile records on the real broker: the service stays up and gives every input record exactly
one output, a decision or a dead letter, seen in read_committed."""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from service.adapters.sql.store import SqlReviewStore
from tests.kafka_helpers import (
    BOOTSTRAP,
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    partitions_of,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RECORDS = 300
MAX_MESSAGE_BYTES = 20_000
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def _valid(rng: random.Random) -> dict[str, object]:
    n = rng.randrange(10**6)
    return {"id": f"c-{n}", "site_id": "herald", "text": f"comment {n}", "author": {"id": "u"}}


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([50, 900, 3_000])
    return json.dumps(_valid(rng))[:-1].encode() + b', "x": ' + b"[" * depth + b"]" * depth + b"}"


def _wrong_type(rng: random.Random) -> bytes:
    doc = _valid(rng)
    field = rng.choice(["id", "site_id", "text", "author", "created_at", "thread_id", "schema"])
    doc[field] = rng.choice([None, 1, 1.5, True, [], {}, [["x"]], {"a": {}}, "", "x" * 3000])
    return json.dumps(doc).encode()


def _surrogate(rng: random.Random) -> bytes:
    doc = json.dumps(_valid(rng))
    return doc.replace("comment ", f"comment \\u{rng.randrange(0xD800, 0xE000):04x}").encode()


def _invalid_utf8(rng: random.Random) -> bytes:
    raw = json.dumps(_valid(rng)).encode()
    at = rng.randrange(len(raw))
    return raw[:at] + rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"]) + raw[at:]


def _timestamp(rng: random.Random) -> bytes:
    stamp = rng.choice(
        ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30T00:00:00Z", "now"]
    )
    return json.dumps({**_valid(rng), "created_at": stamp}).encode()


GENERATORS: list[Callable[[random.Random], bytes | None]] = [
    lambda rng: json.dumps(_valid(rng)).encode(),
    lambda rng: rng.randbytes(rng.randrange(0, 200)),
    lambda rng: None,  # a tombstone
    lambda rng: b"",
    _deep,
    _wrong_type,
    _surrogate,
    _invalid_utf8,
    _timestamp,
    lambda rng: json.dumps({**_valid(rng), "text": "t" * (MAX_MESSAGE_BYTES + 10)}).encode(),
    lambda rng: json.dumps(rng.choice([[], "s", 1, None, True])).encode(),
    lambda rng: b'{"id": "c", "site_id": "herald", "text": "x", "n": NaN}',
    lambda rng: json.dumps({**_valid(rng), "text": "<script>alert(1)</script>\x00\u202e"}).encode(),
    lambda rng: json.dumps({**_valid(rng), "text": "explode"}).encode(),
]


def _records(seed: int) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    for n in range(RECORDS):
        value = GENERATORS[n % len(GENERATORS)](rng)
        key = rng.choice([None, b"", rng.randbytes(8), f"herald:c-{n}".encode()])
        if key is None and value is None:
            key = b"tombstone"  # a record needs one of them
        headers = rng.choice(
            [[], [("trace", rng.randbytes(4))], [("moderation.error.reason", b"x")]]
        )
        out.append((key, value, headers))
    return out


async def _produce(topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        for future in sent:
            await future
    finally:
        await producer.stop()


async def _read_committed(topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topic a read_committed reader sees (kcat's JSON output cannot carry
    the binary keys and headers of this corpus)."""
    partitions = await partitions_of(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # the last stable offsets
        out: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(batch)
        return out
    finally:
        await consumer.stop()


async def test_every_hostile_record_gets_exactly_one_output_and_the_service_stays_up(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    records = _records(seed=7)
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_INSTANCE_ID": f"hostile-{topics.group_id}",
            "MODERATION_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
            "MODERATION_BATCH_MAX_RECORDS": "40",
        },
        tmp_path / "service.log",
    )
    try:
        await _produce(topics.comments, records)

        async def consumed() -> bool:
            assert service.proc.poll() is None, service.log_path.read_text()[-3000:]
            return await all_consumed(topics.group_id, topics.comments)

        await wait_until(consumed, 90, "the service to commit past every hostile record")
        decisions = await _read_committed(topics.decisions)
        dead = await _read_committed(topics.dlq)
        assert len(decisions) + len(dead) == RECORDS
        sources = {
            (d["source"]["partition"], d["source"]["offset"])
            for d in (json.loads(r.value or b"") for r in dead)
        }
        assert len(sources) == len(dead)  # no record dead-lettered twice
        assert dead, "the corpus holds invalid records"
        assert decisions, "the corpus holds valid records"
        url = f"http://127.0.0.1:{service.http_port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0
    finally:
        service.ensure_dead()


def _kcat_with_raw_header(topic: str, header: bytes, value: bytes) -> None:
    """aiokafka only sends str header keys; kcat sends whatever bytes it is given."""
    subprocess.run(
        [
            b"kcat",
            b"-P",
            b"-b",
            BOOTSTRAP.encode(),
            b"-t",
            topic.encode(),
            b"-p",
            b"0",
            b"-H",
            header,
        ],
        input=value + b"\n",
        check=True,
        timeout=60,
        capture_output=True,
    )


async def test_a_header_key_that_is_not_utf8_is_dead_lettered_not_fatal(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    before = json.dumps({"id": "c-before", "site_id": "herald", "text": "first"}).encode()
    after = json.dumps({"id": "c-after", "site_id": "herald", "text": "last"}).encode()
    _kcat_with_raw_header(topics.comments, b"trace=1", before)
    _kcat_with_raw_header(topics.comments, b"\xff\xfe=poison", before.replace(b"before", b"mid"))
    _kcat_with_raw_header(topics.comments, b"trace=3", after)
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_INSTANCE_ID": f"poison-{topics.group_id}",
        },
        tmp_path / "service.log",
    )
    try:

        async def consumed() -> bool:
            assert service.proc.poll() is None, service.log_path.read_text()[-3000:]
            return await all_consumed(topics.group_id, topics.comments)

        await wait_until(consumed, 60, "the service to commit past the poison record")
        decisions = await _read_committed(topics.decisions)
        dead = await _read_committed(topics.dlq)
        assert len(decisions) + len(dead) == 3
        assert len(dead) == 1
        assert json.loads(dead[0].value or b"")["source"]["offset"] == 1
    finally:
        service.ensure_dead()


async def test_an_unreadable_report_is_dead_lettered_and_the_reports_around_it_apply(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    comment = json.dumps({"id": "c-1", "site_id": "herald", "text": "hello"}).encode()
    _kcat_with_raw_header(topics.comments, b"trace=0", comment)

    def report(reporter: str) -> bytes:
        doc = {"comment_id": "c-1", "site_id": "herald", "reporter_id": reporter, "reason": "x"}
        return json.dumps(doc).encode()

    _kcat_with_raw_header(topics.reports, b"trace=1", report("first"))
    _kcat_with_raw_header(topics.reports, b"\xff\xfe=poison", report("poison"))
    _kcat_with_raw_header(topics.reports, b"trace=3", report("last"))
    service = ServiceProcess(
        topics.env() | {"MODERATION_MODEL_PATH": str(tiny_model)}, tmp_path / "service.log"
    )
    try:

        async def consumed() -> bool:
            assert service.proc.poll() is None, service.log_path.read_text()[-3000:]
            return await all_consumed(f"{topics.group_id}-feedback", topics.reports)

        await wait_until(consumed, 60, "the feedback consumer to commit past the poison record")
        dead = await _read_committed(topics.dlq)
        [letter] = [json.loads(d.value or b"") for d in dead]
        assert (letter["reason"], letter["source"]["topic"], letter["source"]["offset"]) == (
            "invalid_utf8",
            topics.reports,
            1,
        )
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()
    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        item = await store.get_item("herald", "c-1")
    finally:
        await store.close()
    reporters = [r.detail.split()[2] for r in item.reasons if r.code.value == "reported"]
    assert reporters == ["first", "last"]
