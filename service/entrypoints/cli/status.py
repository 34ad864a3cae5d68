"""`moderation status`: what the service is behind on (consumer lag, the review queue, the
outbox backlog, spot checks) and which model, policy and schemas it runs.

It reads Kafka and the review store directly, so it works whether or not an instance of the
service is running, and never joins the service's consumer group.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from service.adapters.sql.store import SqlReviewStore
from service.contracts import codec
from service.domain.errors import StoreUnavailable
from service.domain.spot_check import estimate
from service.entrypoints.cli.topic_reader import OpsError, assigned_reader
from service.entrypoints.http.present import spot_check_json
from service.settings import Settings
from service.usecases.ports import Clock

_KAFKA_TIMEOUT_SECONDS: Final = 20.0
_MODEL_METADATA: Final = "model.json"


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


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
    async with assigned_reader(settings.kafka_bootstrap, topic) as (consumer, partitions):
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
