"""POST /api/v1/moderate over the real pipeline and the SQLite store (the fake model stands in
for the classifier). Coral's phase: test_coral_phase.py."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.contracts.codec import auto_event_id
from service.domain.model import Comment, Scores, SubScore
from service.domain.policy import SubScoreThresholds
from tests.fakes import KeywordClassifier, WordLanguageDetector
from tests.schemas import validate
from tests.sync_stack import POLICY, Stack, sync_stack


class GatedClassifier(KeywordClassifier):
    """Scores only once the gate opens: a model slower than any budget."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().score(comments)


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    async with sync_stack(tmp_path, getattr(request, "param", None)) as built:
        yield built


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def moderate(stack: Stack, event: dict[str, Any], who: str = "herald") -> Any:
    return await stack.client.post(
        "/api/v1/moderate", json=event, headers=bearer(stack.tokens[who])
    )


async def test_a_site_gets_the_decision_and_it_is_published_and_queued(stack: Stack) -> None:
    response = await moderate(stack, {"id": "c1", "site_id": "herald", "text": "maybe so"})
    doc = await response.json()

    assert response.status == 200
    validate("decision.v1", doc)
    assert (doc["comment_id"], doc["action"], doc["decided_by"]) == ("c1", "review", "auto")
    assert doc["event_id"] == auto_event_id("herald", "c1")
    [record] = await stack.store.outbox_pending(10)  # published like any decision
    assert record.event_id == doc["event_id"]
    assert json.loads(record.value) == doc
    assert (await stack.store.get_item("herald", "c1")).comment_id == "c1"  # in the queue


async def test_asking_twice_returns_the_first_decision_and_queues_nothing_twice(
    stack: Stack,
) -> None:
    first = await moderate(stack, {"id": "c1", "site_id": "herald", "text": "buy now"})
    again = await moderate(stack, {"id": "c1", "site_id": "herald", "text": "a new text"})

    assert await again.json() == await first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(await stack.store.outbox_pending(10)) == 1
    assert stack.model.calls == [1]  # the second was not scored


async def test_concurrent_requests_for_one_comment_publish_one_decision(stack: Stack) -> None:
    event = {"id": "c1", "site_id": "herald", "text": "hello"}
    responses = await asyncio.gather(*(moderate(stack, event) for _ in range(5)))

    docs = [await r.json() for r in responses]
    assert all(d == docs[0] for d in docs)
    assert len(await stack.store.outbox_pending(10)) == 1


@pytest.mark.parametrize(
    ("token", "event", "status", "code"),
    [
        ("herald", {"id": "c1", "site_id": "tech-blog", "text": "x"}, 403, "forbidden_site"),
        ("moderator", {"id": "c1", "site_id": "herald", "text": "x"}, 403, "forbidden_role"),
        ("herald", {"id": "c1", "site_id": "herald"}, 400, "invalid_comment"),
        ("herald", {"id": 7, "site_id": "herald", "text": "x"}, 400, "invalid_comment"),
    ],
)
async def test_refusals(
    stack: Stack, token: str, event: dict[str, Any], status: int, code: str
) -> None:
    response = await moderate(stack, event, token)

    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert await stack.store.outbox_pending(10) == []


@pytest.mark.parametrize("stack", [GatedClassifier()], indirect=True)
async def test_past_the_budget_the_site_is_told_to_ask_again_and_nothing_is_lost(
    stack: Stack,
) -> None:
    assert isinstance(stack.model, GatedClassifier)
    response = await moderate(stack, {"id": "slow", "site_id": "herald", "text": "hi"})
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "decision_pending"

    stack.model.gate.set()
    await stack.moderator.drain()

    [record] = await stack.store.outbox_pending(10)
    assert json.loads(record.value)["comment_id"] == "slow"
    again = await moderate(stack, {"id": "slow", "site_id": "herald", "text": "hi"})
    assert (await again.json())["event_id"] == record.event_id


class ThreatClassifier(KeywordClassifier):
    """Keyword scores plus sub-scores: threat 0.9 for 'hurt', insult 0.3 always."""

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        return [
            replace(s, threat=0.9 if "hurt" in c.text else 0.01, insult=0.3)
            for s, c in zip(super().score(comments), comments, strict=True)
        ]


async def test_languages_and_sub_scores_decide_as_on_the_kafka_path_and_replay_intact(
    tmp_path: Path,
) -> None:
    policy = replace(
        POLICY,
        default=replace(
            POLICY.default, sub_scores={SubScore.THREAT: SubScoreThresholds(reject_at=0.8)}
        ),
    )
    async with sync_stack(
        tmp_path, ThreatClassifier(), policy=policy, language_detector=WordLanguageDetector()
    ) as stack:
        french = {"id": "fr", "site_id": "herald", "text": "Merci pour cet article"}
        threat = {"id": "th", "site_id": "herald", "text": "I will hurt you", "lang": "en-US"}
        first = [await (await moderate(stack, e)).json() for e in (french, threat)]
        again = [await (await moderate(stack, e)).json() for e in (french, threat)]
        item = await stack.store.get_item("herald", "fr")

    for doc in first:
        validate("decision.v1", doc)
    fr, th = first
    assert (fr["action"], [r["code"] for r in fr["reasons"]]) == (
        "review",
        ["unsupported_language"],
    )
    assert fr["language"] == {"code": "fr", "detected": True}
    assert (th["action"], th["reasons"][0]["code"]) == ("reject", "threat_above_reject_threshold")
    assert th["language"] == {"code": "en", "detected": False}
    assert th["scores"] == {"spam": 0.01, "abuse": 0.02, "insult": 0.3, "threat": 0.9}
    assert again == first  # the stored decision, language and sub-scores included
    assert item.language is not None
    assert (item.language.code, item.scores.insult) == ("fr", 0.3)
