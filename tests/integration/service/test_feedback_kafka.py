"""Reports and appeals produced by kcat (a client we did not write) through the running
service: duplicates merged, the reasons shown in the queue, reporter reliability updated by
the moderators' verdicts, bad feedback dead-lettered with its reason."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.adapters.sql.store import SqlReviewStore
from service.domain.feedback import TrainingLabel
from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    headers_of,
    kcat_consume,
    kcat_produce,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Scores never decide here: "casino bonus" is rejected by a term rule, the rest approved.
POLICY = """
version = "feedback-1"
[defaults.thresholds]
spam = { approve_below = 0.999, reject_at = 1.0 }
abuse = { approve_below = 0.999, reject_at = 1.0 }
[defaults.terms]
block = ["casino bonus"]
"""


def comment(cid: str, text: str) -> tuple[bytes, bytes]:
    doc = {"id": cid, "site_id": "herald", "text": text, "author": {"id": f"author-{cid}"}}
    return f"herald:{cid}".encode(), json.dumps(doc).encode()


def report(cid: str, reporter: str, reason: str) -> tuple[bytes, bytes]:
    doc = {"comment_id": cid, "site_id": "herald", "reporter_id": reporter, "reason": reason}
    return f"herald:{cid}".encode(), json.dumps(doc).encode()


def appeal(cid: str, reason: str) -> tuple[bytes, bytes]:
    doc = {"comment_id": cid, "site_id": "herald", "author_id": f"author-{cid}", "reason": reason}
    return f"herald:{cid}".encode(), json.dumps(doc).encode()


class Api:
    def __init__(self, service: ServiceProcess) -> None:
        self._base = f"http://127.0.0.1:{service.http_port}/api/v1"
        self._headers = {"Authorization": f"Bearer {service.admin_token}"}

    async def get(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession(headers=self._headers) as session,
            session.get(self._base + path) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with (
            aiohttp.ClientSession(headers=self._headers) as session,
            session.post(self._base + path, json=body) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()


def moderator_verdicts(topics: KafkaTopics) -> list[dict[str, Any]]:
    docs = [json.loads(r["payload"]) for r in kcat_consume(topics.decisions)]
    return [d for d in docs if d["decided_by"].startswith("moderator:")]


async def feedback_consumed(topics: KafkaTopics) -> bool:
    group = f"{topics.group_id}-feedback"
    return await all_consumed(group, topics.reports) and await all_consumed(group, topics.appeals)


async def test_reports_and_appeals_through_kcat_reach_the_queue_and_teach_reliability(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    kcat_produce(
        topics.comments,
        [
            comment("fine-1", "Thanks, a good read."),
            comment("fine-2", "I disagree with the second point."),
            comment("fine-3", "Nice photos."),
            comment("blocked-1", "Claim your casino bonus now"),
        ],
        tmp_path,
    )
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_POLICY_FILE": str(policy),
            # a candidate model in shadow: would-be decisions for every comment, none acted on
            "MODERATION_SHADOW_MODEL_PATH": str(tiny_model),
        },
        tmp_path / "service.log",
    )
    try:
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments), 120, "comments decided"
        )
        api = Api(service)
        assert (await api.get("/queue?site=herald"))["items"] == []

        kcat_produce(
            topics.reports,
            [
                report("fine-1", "rita", "<script>alert(1)</script> rude"),
                report("fine-1", "rita", "rude, again"),  # the same reporter: merged away
                report("fine-1", "sam", "spam link"),
                report("fine-2", "rita", "I don't like it"),
                report("blocked-1", "sam", "spam"),  # already rejected: nothing to do
                report("ghost", "rita", "never seen"),
                (b"herald:x", b'{"comment_id": "fine-3"}'),
            ],
            tmp_path,
            partition=0,
        )
        kcat_produce(
            topics.appeals,
            [
                appeal("blocked-1", "it was a joke"),
                appeal("blocked-1", "please"),  # the same author again: merged away
                appeal("fine-3", "why?"),  # approved: nothing to appeal
            ],
            tmp_path,
            partition=0,
        )
        await wait_until(lambda: feedback_consumed(topics), 60, "feedback consumed")

        queue = {i["comment_id"]: i for i in (await api.get("/queue?site=herald"))["items"]}
        assert sorted(queue) == ["blocked-1", "fine-1", "fine-2"]
        fine_1 = [r for r in queue["fine-1"]["reasons"] if r["code"] == "reported"]
        assert len(fine_1) == 2  # rita once, sam once
        assert "<script>alert(1)</script> rude" in fine_1[0]["detail"]  # as sent; the page escapes
        assert queue["fine-1"]["report_weight"] == pytest.approx(1.0)
        [appealed] = [r for r in queue["blocked-1"]["reasons"] if r["code"] == "appealed"]
        assert "it was a joke" in appealed["detail"]

        # moderators: rita and sam were right about fine-1, rita wrong about fine-2
        for cid, action, reason in (
            ("fine-1", "reject", "abuse"),
            ("fine-2", "approve", "ok"),
            ("blocked-1", "approve", "ok"),
        ):
            await api.post(f"/items/herald/{cid}/decision", {"action": action, "reason": reason})

        # rita reports fine-1 again after its re-review: it is not queued again
        kcat_produce(topics.reports, [report("fine-1", "rita", "still rude")], tmp_path)
        await wait_until(lambda: feedback_consumed(topics), 60, "late report consumed")
        assert (await api.get("/queue?site=herald"))["items"] == []

        async def verdicts_published() -> bool:
            return len(moderator_verdicts(topics)) >= 3

        await wait_until(verdicts_published, 60, "the verdicts on the decisions topic")
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()

    shadow = [json.loads(r["payload"]) for r in kcat_consume(topics.shadow)]
    assert sorted(d["comment_id"] for d in shadow) == ["blocked-1", "fine-1", "fine-2", "fine-3"]
    dead = kcat_consume(topics.dlq)
    reasons = sorted(headers_of(d)["moderation.error.reason"] for d in dead)
    assert reasons == ["missing_field", "not_rejected", "unknown_comment"]
    assert {json.loads(d["payload"])["source"]["topic"] for d in dead} == {
        topics.reports,
        topics.appeals,
    }

    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        rita = await store.reporter_stats("herald", "rita")
        sam = await store.reporter_stats("herald", "sam")
        labels = {e.comment_id: e for e in await store.labels()}
    finally:
        await store.close()
    assert (rita.upheld, rita.dismissed) == (1, 1)
    assert (sam.upheld, sam.dismissed) == (1, 0)
    assert sam.reliability > rita.reliability
    assert labels["fine-1"].label is TrainingLabel.ABUSE
    assert labels["fine-1"].overturned
    assert labels["blocked-1"].label is TrainingLabel.OK
    assert labels["blocked-1"].overturned
    assert not labels["fine-2"].overturned
    # the site hears every moderator verdict on the decisions topic
    assert sorted((v["comment_id"], v["action"]) for v in moderator_verdicts(topics)) == [
        ("blocked-1", "approve"),
        ("fine-1", "reject"),
        ("fine-2", "approve"),
    ]
