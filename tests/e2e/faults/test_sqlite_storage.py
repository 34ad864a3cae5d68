"""Fault: the SQLite review store cannot be written (a read-only file system, a full disk).
The service must say so clearly and exit non-zero, never commit past what it did not store,
and decide everything exactly once when the storage is fixed and it is started again."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from service.adapters.sql.store import SqlReviewStore
from tests.e2e.faults.fault_kit import (
    assert_exactly_once,
    committed,
    log_events,
    make_stream,
    produce,
    progress,
    published_decisions,
    remount,
    services,
    stored_actions,
    tmpfs,
)
from tests.kafka_helpers import KafkaTopics, ServiceProcess, all_consumed, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COMMENTS = 20_000
FULL_SIZE = "1m"  # a few thousand comments fill it


def store_errors(service: ServiceProcess) -> list[str]:
    """Every store error the service logged, retried or fatal."""
    return [
        str(e.get("error", ""))
        for e in service.logs()
        if e.get("event") in {"review store unavailable, retrying", "fatal"}
    ]


async def finish(
    topics: KafkaTopics, env: dict[str, str], log: Path, started: list[ServiceProcess]
) -> None:
    service = ServiceProcess(env, log)
    started.append(service)
    await wait_until(
        lambda: all_consumed(topics.group_id, topics.comments),
        240,
        "the service to finish the stream once the store is writable",
    )
    service.signal(signal.SIGTERM)
    assert await service.wait(60) == 0


async def test_read_only_store_exits_non_zero_with_a_clear_error_and_loses_nothing(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    stream = make_stream(COMMENTS)
    produce(topics, stream.lines, tmp_path / "in")
    with tmpfs(tmp_path / "db", "64m") as db_dir, services() as started:
        database_url = f"sqlite:///{db_dir / 'store.db'}"
        store = SqlReviewStore.from_url(database_url)  # an existing, migrated store ...
        await store.migrate()
        await store.close()
        remount(db_dir, "ro")  # ... on a file system that turned read-only
        env = topics.env() | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_DATABASE_URL": database_url,
            "MODERATION_INSTANCE_ID": "read-only",
        }
        service = ServiceProcess(env, tmp_path / "service-ro.log")
        started.append(service)
        assert await service.wait(120) == 1
        [fatal] = log_events(service, "fatal")
        # SQLite's own words on a read-only WAL database are "unable to open database file"
        assert str(fatal["error"]).startswith("cannot open the review store: sqlite:")
        assert await progress(topics) == 0
        assert published_decisions(topics) == []

        remount(db_dir, "rw")
        await finish(topics, env, tmp_path / "service-rw.log", started)
        await assert_exactly_once(topics, stream, database_url)


async def test_full_disk_commits_nothing_unstored_and_resumes_exactly_once(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    stream = make_stream(COMMENTS)
    produce(topics, stream.lines, tmp_path / "in")
    with tmpfs(tmp_path / "db", FULL_SIZE) as db_dir, services() as started:
        database_url = f"sqlite:///{db_dir / 'store.db'}"
        env = topics.env() | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_DATABASE_URL": database_url,
            "MODERATION_BATCH_MAX_RECORDS": "100",
            "MODERATION_KAFKA_RETRY_MAX_SECONDS": "2",
            "MODERATION_INSTANCE_ID": "disk-full",
        }
        service = ServiceProcess(env, tmp_path / "service-full.log")
        started.append(service)

        async def disk_full() -> bool:
            return any("full" in error for error in store_errors(service))

        await wait_until(disk_full, 180, "the store to report the disk full")
        done = await progress(topics)
        assert 0 < done < len(stream)  # it filled up mid-stream
        # nothing decided is missing from the store: offsets never passed an unstored comment
        stored = stored_actions(database_url)
        decided = {(str(d["site_id"]), str(d["comment_id"])) for d in published_decisions(topics)}
        assert decided <= set(stored)
        assert len(decided) <= done

        service.signal(signal.SIGKILL)  # whatever it is doing now
        await service.wait(30)
        before = await committed(topics)
        remount(db_dir, "size=256m")  # space again
        assert await committed(topics) == before
        await finish(topics, env, tmp_path / "service-after.log", started)
        await assert_exactly_once(topics, stream, database_url)


async def test_full_disk_exits_non_zero_with_a_clear_error(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    stream = make_stream(COMMENTS)
    produce(topics, stream.lines, tmp_path / "in")
    with tmpfs(tmp_path / "db", FULL_SIZE) as db_dir, services() as started:
        env = topics.env() | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_DATABASE_URL": f"sqlite:///{db_dir / 'store.db'}",
            "MODERATION_BATCH_MAX_RECORDS": "100",
            "MODERATION_INSTANCE_ID": "disk-full-exit",
        }
        service = ServiceProcess(env, tmp_path / "service.log")
        started.append(service)

        async def said_full() -> bool:
            return any("full" in error for error in store_errors(service))

        await wait_until(said_full, 180, "the store to report the disk full")
        # A service that stops on a full disk does so at once: 30 s is plenty.
        assert await service.wait(30) != 0
        [fatal] = log_events(service, "fatal")
        assert "full" in str(fatal["error"])
