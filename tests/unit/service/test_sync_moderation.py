"""POST /api/v1/moderate and Coral's external moderation phase, over the real pipeline and the
SQLite store (the fake model stands in for the classifier)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from service.adapters.codec import Limits, auto_event_id
from service.adapters.sql.store import SqlReviewStore
from service.auth import TokenRegistry, add_token
from service.coral import CoralConfig
from service.domain.model import Comment, Scores
from service.domain.policy import Policy, SitePolicy, Thresholds
from service.http.app import build_app
from service.pipeline import Pipeline, Topics
from service.review_service import ReviewService
from service.sync_moderation import SyncModerator
from tests.fakes import FixedClock, KeywordClassifier
from tests.schemas import validate

NEW_SECRET = b"whsec-new-0123456789abcdef"
OLD_SECRET = b"whsec-old-0123456789abcdef"
BUDGET = 0.2


class GatedClassifier(KeywordClassifier):
    """Scores only once the gate opens: a model slower than any budget."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().score(comments)


@dataclass
class Stack:
    client: TestClient[Request, Application]
    store: SqlReviewStore
    moderator: SyncModerator
    model: KeywordClassifier
    tokens: dict[str, str]


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    model: KeywordClassifier = getattr(request, "param", None) or KeywordClassifier()
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    await store.migrate()
    clock = FixedClock()
    policy = Policy("p-1", SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9)))
    pipeline = Pipeline(model, policy, clock, Topics(decisions="decisions"), Limits())
    executor = ThreadPoolExecutor(max_workers=1)
    moderator = SyncModerator(pipeline, store, clock, executor, decisions_topic="decisions")
    path = tmp_path / "tokens.json"
    tokens = {
        "herald": add_token(path, "herald-cms", "site", ["herald"]),
        "moderator": add_token(path, "alice", "moderator", ["*"]),
    }
    app = build_app(
        ReviewService(store, clock, decisions_topic="decisions", claim_lease=timedelta(minutes=5)),
        TokenRegistry.load(path),
        moderator=moderator,
        coral=CoralConfig(secrets=(OLD_SECRET, NEW_SECRET), budget_seconds=BUDGET),
        moderate_budget_seconds=BUDGET,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Stack(client, store, moderator, model, tokens)
    finally:
        if isinstance(model, GatedClassifier):
            model.gate.set()
        await moderator.drain()
        await client.close()
        executor.shutdown(wait=True)
        await store.close()


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


# Coral's external moderation phase


def coral_body(text: str, role: str = "COMMENTER", story: str = "story-1") -> bytes:
    """As Coral serialises it: JSON indented by two spaces."""
    doc = {
        "action": "NEW",
        "comment": {"body": text, "parentID": None},
        "author": {"id": "user-1", "role": role},
        "story": {"id": story, "url": "https://herald.example/a/1"},
        "site": {"id": "herald"},
        "tenantID": "tenant-1",
        "tenantDomain": "herald.example",
    }
    return json.dumps(doc, indent=2).encode()


def sign(body: bytes, *secrets: bytes) -> str:
    return ",".join(
        "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest() for secret in secrets
    )


async def coral(stack: Stack, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Coral-Signature"] = signature
    return await stack.client.post("/integrations/coral/moderation", data=body, headers=headers)


@pytest.mark.parametrize(
    ("text", "answer", "action"),
    [
        ("lovely article", {"status": "APPROVED"}, "approve"),
        (
            "you idiot",
            {
                "status": "REJECTED",
                "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
            },
            "reject",
        ),
        (
            "buy pills",
            {
                "status": "REJECTED",
                "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
            },
            "reject",
        ),
        (
            "maybe",
            {
                "status": "SYSTEM_WITHHELD",
                "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
            },
            "review",
        ),
    ],
)
async def test_coral_gets_its_answer_and_the_decision_is_published(
    stack: Stack, text: str, answer: dict[str, Any], action: str
) -> None:
    body = coral_body(text)
    response = await coral(stack, body, sign(body, NEW_SECRET))

    assert response.status == 200
    assert await response.json() == answer
    [record] = await stack.store.outbox_pending(10)
    doc = json.loads(record.value)
    validate("decision.v1", doc)
    assert (doc["site_id"], doc["action"]) == ("herald", action)
    assert doc["comment_id"].startswith("coral-")


async def test_the_same_coral_comment_keeps_its_id_and_its_decision(stack: Stack) -> None:
    body = coral_body("maybe")
    await coral(stack, body, sign(body, NEW_SECRET))
    await coral(stack, body, sign(body, NEW_SECRET))
    other_story = coral_body("maybe", story="story-2")
    await coral(stack, other_story, sign(other_story, NEW_SECRET))

    ids = [json.loads(r.value)["comment_id"] for r in await stack.store.outbox_pending(10)]
    assert len(ids) == 2  # the repeat was not decided again; another story is another comment
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=abcdef",
        sign(b"another body", NEW_SECRET),
        sign(coral_body("lovely article"), b"whsec-someone-else-012345"),
    ],
    ids=["missing", "empty", "zeros", "other-scheme", "other-body", "unknown-secret"],
)
async def test_a_bad_signature_is_refused_and_nothing_happens(
    stack: Stack, signature: str | None
) -> None:
    response = await coral(stack, coral_body("lovely article"), signature)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"
    assert stack.model.calls == []
    assert await stack.store.outbox_pending(10) == []


@pytest.mark.parametrize(
    "secrets",
    [(OLD_SECRET,), (NEW_SECRET,), (b"whsec-retired-0123456789", NEW_SECRET)],
    ids=["old-only", "new-only", "retired-and-new"],
)
async def test_every_configured_secret_is_accepted_during_rotation(
    stack: Stack, secrets: tuple[bytes, ...]
) -> None:
    body = coral_body("lovely article")
    response = await coral(stack, body, sign(body, *secrets))

    assert response.status == 200


async def test_staff_comments_are_approved_without_scoring(stack: Stack) -> None:
    body = coral_body("you idiot", role="MODERATOR")
    response = await coral(stack, body, sign(body, NEW_SECRET))

    assert await response.json() == {"status": "APPROVED"}
    assert stack.model.calls == []
    [record] = await stack.store.outbox_pending(10)
    assert json.loads(record.value)["reasons"][0]["code"] == "staff_author"


@pytest.mark.parametrize("stack", [GatedClassifier()], indirect=True)
async def test_an_overloaded_model_gets_coral_a_204_within_budget_and_loses_nothing(
    stack: Stack,
) -> None:
    assert isinstance(stack.model, GatedClassifier)
    body = coral_body("maybe")
    started = time.monotonic()
    response = await coral(stack, body, sign(body, NEW_SECRET))
    elapsed = time.monotonic() - started

    assert response.status == 204
    assert elapsed < BUDGET + 0.02 + 0.05  # budget + 20 ms, and the test client's own cost
    stack.model.gate.set()
    await stack.moderator.drain()
    [record] = await stack.store.outbox_pending(10)  # decided and published all the same
    assert json.loads(record.value)["action"] == "review"


async def test_coral_is_off_without_secrets(tmp_path: Path) -> None:
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    await store.migrate()
    app = build_app(
        ReviewService(store, FixedClock(), decisions_topic="d"),
        TokenRegistry(()),
        coral=CoralConfig(secrets=()),
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        body = coral_body("x")
        response = await client.post(
            "/integrations/coral/moderation", data=body, headers={"X-Coral-Signature": sign(body)}
        )
        assert response.status == 404
    finally:
        await client.close()
        await store.close()
