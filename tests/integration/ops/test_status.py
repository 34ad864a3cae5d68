"""`status` against the real broker and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from service.adapters.sql.store import SqlReviewStore
from service.domain.model import Action, Reason, ReasonCode, Scores
from service.domain.review import StoredComment
from service.entrypoints.cli.status import format_status, status
from service.settings import Settings
from tests.kafka_helpers import BOOTSTRAP, KafkaTopics, end_offsets, kcat_produce

pytestmark = [pytest.mark.kafka]

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


def stored(site: str, cid: str, action: Action, decided_at: datetime) -> StoredComment:
    return StoredComment(
        site_id=site,
        comment_id=cid,
        text=f"text of {cid}",
        author_id="ann",
        author_name="Ann",
        thread_id=None,
        created_at=None,
        scores=Scores(spam=0.6, abuse=0.1),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "spam score between thresholds"),),
        action=action,
        model_version="m-1",
        policy_version="p-1",
        decided_at=decided_at,
        event_json=json.dumps({"id": cid, "site_id": site}),
    )


async def commit(group_id: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await asyncio.sleep(0)  # see tests.kafka_helpers.end_offsets
        await consumer.stop()


async def test_status_reports_lag_per_partition_queue_per_site_and_versions(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    lines: list[tuple[bytes | None, bytes]] = [
        (f"herald:c-{n}".encode(), json.dumps({"id": f"c-{n}"}).encode()) for n in range(30)
    ]
    kcat_produce(topics.comments, lines, tmp_path)
    ends = await end_offsets(topics.comments)
    assert sum(ends.values()) == 30
    busy = [p for p, end in sorted(ends.items()) if end >= 2]
    done, half = busy[0], busy[1]  # keys spread 30 records over the 3 partitions
    await commit(
        topics.group_id,
        {
            TopicPartition(topics.comments, done): ends[done],
            TopicPartition(topics.comments, half): ends[half] // 2,
        },
    )
    database = tmp_path / "store.db"
    store = SqlReviewStore.from_url(f"sqlite:///{database}")
    await store.migrate()
    await store.record_decisions(
        [
            stored("herald", "r-1", Action.REVIEW, T0),
            stored("herald", "r-2", Action.REVIEW, T0 + timedelta(minutes=5)),
            stored("tech-blog", "r-3", Action.REVIEW, T0 + timedelta(minutes=9)),
            stored("herald", "a-1", Action.APPROVE, T0),
        ]
    )
    schema_version = await store.schema_version()
    await store.close()
    settings = Settings.from_env(
        topics.env()
        | {
            "MODERATION_STATE_DIR": str(tmp_path),
            "MODERATION_DATABASE_URL": f"sqlite:///{database}",
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_POLICY_VERSION": "policy-7",
        }
    )

    report = await status(settings, clock=FixedClock(T0 + timedelta(minutes=10)))

    lag = {p["partition"]: p for p in report["kafka"]["partitions"]}
    assert set(lag) == set(ends)
    for partition, end in ends.items():
        assert lag[partition]["end"] == end
    assert lag[done]["lag"] == 0
    assert lag[half]["committed"] == ends[half] // 2
    assert lag[half]["lag"] == ends[half] - ends[half] // 2
    [untouched] = set(ends) - {done, half}
    assert lag[untouched]["committed"] is None
    assert lag[untouched]["lag"] == ends[untouched]
    assert report["kafka"]["total_lag"] == sum(p["lag"] for p in lag.values())
    store_report = report["store"]
    assert store_report["schema_version"] == schema_version > 0
    assert store_report["outbox_backlog"] == 0
    assert store_report["review_queue_total"] == 3
    sites = {s["site_id"]: s for s in store_report["review_queue"]}
    assert sites["herald"]["depth"] == 2
    assert sites["herald"]["oldest_age_seconds"] == 600.0
    assert sites["tech-blog"]["depth"] == 1
    assert sites["tech-blog"]["oldest_age_seconds"] == 60.0
    model_json = json.loads((tiny_model / "model.json").read_text())
    assert report["model"]["version"] == model_json["model_version"]
    assert report["policy_version"] == "policy-7"
    assert "moderation.dead-letter.v1" in report["event_schemas"]
    json.dumps(report)  # JSON-ready, as `moderation status --json` prints it
    text = format_status(report)
    assert f"total lag {report['kafka']['total_lag']}" in text
    assert "site herald" in text
    assert model_json["model_version"] in text


async def test_status_names_what_it_cannot_reach_instead_of_failing(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MODERATION_STATE_DIR": str(tmp_path),
            "MODERATION_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "MODERATION_TOPIC_COMMENTS": "no-such-topic-for-status",
            "MODERATION_MODEL_PATH": str(tmp_path / "no-model"),
        }
    )

    report = await status(settings)

    assert "does not exist" in report["kafka"]["error"]
    assert "model.json" in report["model"]["error"]
    assert "error" in format_status(report)
