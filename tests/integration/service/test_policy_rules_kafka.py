"""Policy rules through the real pipeline, store and broker: campaigns, floods, shadow mode
and a policy reload at run time."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.entrypoints.cli.shadow_report import shadow_report
from service.settings import Settings
from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    kcat_consume,
    kcat_produce,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Scores never decide here (approve below 0.999, reject at 1.0): only the rules do.
RULES = """
version = "rules-1"
[defaults.thresholds]
spam = { approve_below = 0.999, reject_at = 1.0 }
abuse = { approve_below = 0.999, reject_at = 1.0 }
[defaults.campaign]
min_authors = 5
window_seconds = 60
[defaults.flood]
max_comments = 3
window_seconds = 60
action = "review"
[shadow]
version = "candidate-9"
[shadow.sites.herald.thresholds]
spam = { approve_below = 0.0, reject_at = 1.0 }
"""


def thresholds_only(version: str, *, approve_below: float, reject_at: float) -> str:
    both = f"{{ approve_below = {approve_below}, reject_at = {reject_at} }}"
    return f'version = "{version}"\n[defaults.thresholds]\nspam = {both}\nabuse = {both}\n'


def event(cid: str, text: str, author: str, site: str = "herald") -> tuple[bytes, bytes]:
    doc = {"id": cid, "site_id": site, "text": text, "author": {"id": author}}
    return f"{site}:{cid}".encode(), json.dumps(doc).encode()


def decisions(topic: str) -> dict[str, dict[str, Any]]:
    docs = [json.loads(r["payload"]) for r in kcat_consume(topic)]
    by_id = {d["comment_id"]: d for d in docs}
    assert len(by_id) == len(docs), "a comment was decided twice"
    return by_id


async def finish(topics: KafkaTopics) -> None:
    await wait_until(
        lambda: all_consumed(topics.group_id, topics.comments), 120, "every comment decided"
    )


async def test_campaigns_floods_and_the_shadow_policy_through_pipeline_and_store(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(RULES)
    campaign = [
        event(f"camp-{n:02d}", f"Visit my page for great deals today! #{n}", f"u{n}")
        for n in range(20)
    ]
    flood = [
        event(f"flood-{n}", f"thought number {n} about the article", "chatty") for n in range(6)
    ]
    other = [event("elsewhere", "a comment on another site", "reader", site="tech-blog")]
    # one partition: the order produced is the order decided
    kcat_produce(topics.comments, [*campaign, *flood, *other], tmp_path, partition=0)
    service = ServiceProcess(
        topics.env()
        | {"MODERATION_MODEL_PATH": str(tiny_model), "MODERATION_POLICY_FILE": str(policy)},
        tmp_path / "service.log",
    )
    try:
        await finish(topics)
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()

    live = decisions(topics.decisions)
    assert len(live) == 27
    # the same text (numbers aside) from 20 authors: rejected from the 5th author on
    camp = [live[f"camp-{n:02d}"] for n in range(20)]
    assert [d["action"] for d in camp] == ["approve"] * 4 + ["reject"] * 16
    assert {d["reasons"][0]["code"] for d in camp[4:]} == {"campaign"}
    assert camp[4]["reasons"][0]["detail"].startswith("the same text from 5 authors")
    # one author's 4th comment within the minute is a flood
    assert [live[f"flood-{n}"]["action"] for n in range(6)] == ["approve"] * 3 + ["review"] * 3
    assert live["flood-3"]["reasons"][0]["code"] == "flood"
    assert {d["policy_version"] for d in live.values()} == {"rules-1"}

    # shadow: one would-be decision per comment of the site with a candidate, none acted on
    shadow = decisions(topics.shadow)
    assert set(shadow) == {k for k, d in live.items() if d["site_id"] == "herald"}
    assert {d["policy_version"] for d in shadow.values()} == {"candidate-9"}
    report = await shadow_report(
        Settings.from_env(topics.env() | {"MODERATION_STATE_DIR": str(tmp_path)})
    )
    herald = report["sites"]["herald"]
    live_herald = [d["action"] for d in live.values() if d["site_id"] == "herald"]
    assert herald["compared"] == len(shadow) == 26
    assert herald["live"] == dict(Counter(live_herald))
    assert herald["shadow"] == dict(Counter(d["action"] for d in shadow.values()))
    agree = sum(shadow[k]["action"] == live[k]["action"] for k in shadow)
    assert herald["agreement"] == round(agree / 26, 4)
    assert report["shadow_versions"] == {"candidate-9": 26}


async def test_a_policy_reloaded_by_sighup_decides_what_arrives_after_it(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(thresholds_only("v1", approve_below=0.999, reject_at=1.0))
    service = ServiceProcess(
        topics.env()
        | {"MODERATION_MODEL_PATH": str(tiny_model), "MODERATION_POLICY_FILE": str(policy)},
        tmp_path / "service.log",
    )
    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        kcat_produce(
            topics.comments,
            [event(f"a{n}", "hello there", f"u{n}") for n in range(4)],
            tmp_path,
            partition=0,
        )
        await finish(topics)

        # every label rejects from 0.0 on: all that comes next is rejected
        policy.write_text(thresholds_only("v2", approve_below=0.0, reject_at=0.0))
        service.signal(signal.SIGHUP)

        async def reloaded() -> bool:
            return (await service.metrics()).get(
                ("moderation_policy_info", (("version", "v2"),))
            ) == 1

        await wait_until(reloaded, 30, "the service to load policy v2")
        kcat_produce(
            topics.comments,
            [event(f"b{n}", "hello there", f"u{n}") for n in range(4)],
            tmp_path,
            partition=0,
        )
        await finish(topics)

        # a broken file is refused: v2 stays, and the refusal is in the audit log
        policy.write_text('version = "v3"\n[defaults.thresholds]\nspam = { reject_at = "x" }\n')
        service.signal(signal.SIGHUP)

        async def refused() -> bool:
            entries = (await store.audit_log(None)).items
            return any(e.action == "policy_reload_failed" for e in entries)

        await wait_until(refused, 30, "the refused reload in the audit log")
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
        audit = [(e.actor, e.action, e.detail) for e in (await store.audit_log(None)).items]
    finally:
        service.ensure_dead()
        await store.close()

    live = decisions(topics.decisions)
    assert [(live[f"a{n}"]["action"], live[f"a{n}"]["policy_version"]) for n in range(4)] == [
        ("approve", "v1")
    ] * 4
    assert [(live[f"b{n}"]["action"], live[f"b{n}"]["policy_version"]) for n in range(4)] == [
        ("reject", "v2")
    ] * 4
    failed, applied = audit[0], audit[1]  # newest first
    assert failed[:2] == ("signal:SIGHUP", "policy_reload_failed")
    assert "defaults.thresholds.spam.reject_at" in failed[2]
    assert applied[:2] == ("signal:SIGHUP", "policy_reload")
    assert "version v1 -> v2" in applied[2]
    assert "defaults.thresholds.abuse.reject_at: 1.0 -> 0.0" in applied[2]
