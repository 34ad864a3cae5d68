"""An item's context over the API: the comment it answers, its article, its author's counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.domain.model import Action
from service.entrypoints.http.openapi import document
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore
from tests.http_helpers import ALICE, app_over, bearer, stored_comment

Client = TestClient[web.Request, web.Application]
NOW = FixedClock().moment
HOSTILE_TITLE = "<script>alert('title')</script> Budget \u202e"
HOSTILE_PARENT = "<img src=x onerror=\"document.title='pwned'\"> I disagree"
URL = "https://herald.example/2026/budget?utm=1#comments"


@pytest.fixture
async def store() -> InMemoryReviewStore:
    s = InMemoryReviewStore()
    at = NOW - timedelta(hours=2)
    await s.record_decisions(
        [
            stored_comment(
                "herald",
                "top",
                text=HOSTILE_PARENT,
                author_id="bob",
                author_name="Bob",
                decided_at=at,
            ),
            replace(
                stored_comment("herald", "reply", text="Read it again", decided_at=at),
                parent_id="top",
                thread_url=URL,
                thread_title=HOSTILE_TITLE,
            ),
            stored_comment("herald", "ann-ok", action=Action.APPROVE, decided_at=at),
            stored_comment("herald", "ann-spam", action=Action.REJECT, decided_at=at),
            stored_comment("gazette", "elsewhere", action=Action.APPROVE, decided_at=at),
            replace(stored_comment("herald", "orphan", author_id=None), parent_id="elsewhere"),
        ]
    )
    s.reported.add(("herald", "ann-ok"))
    return s


@pytest.fixture
async def client(store: InMemoryReviewStore) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app_over(store))) as c:
        yield c


def _check_documented(body: dict[str, Any]) -> None:
    doc = document()
    answer = doc["paths"]["/api/v1/items/{site_id}/{comment_id}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"] | {"components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


async def test_a_replys_detail_shows_its_decided_parent_its_article_and_the_authors_counts(
    client: Client,
) -> None:
    decided = await client.post(
        "/api/v1/items/herald/top/decision",
        headers=bearer(ALICE),
        json={"action": "reject", "reason": "abuse"},
    )
    assert decided.status == 200

    response = await client.get("/api/v1/items/herald/reply", headers=bearer(ALICE))

    assert response.status == 200
    body = await response.json()
    _check_documented(body)
    item = body["item"]
    assert (item["parent_id"], item["thread_url"], item["thread_title"]) == (
        "top",
        URL,
        HOSTILE_TITLE,
    )
    assert body["parent"] == {
        "comment_id": "top",
        "text": HOSTILE_PARENT,
        "author": {"id": "bob", "name": "Bob"},
        "action": "reject",
        "decided_by": "moderator:alice",
        "decided_at": "2026-11-27T12:00:00.000Z",
        "decision_reason": "abuse",
    }
    # ann: this reply (waiting), one approved (and reported), one rejected; not gazette's
    assert body["author_counts"] == {
        "total": 3,
        "approved": 1,
        "rejected": 1,
        "waiting": 1,
        "reported": 1,
    }


async def test_a_parent_still_waiting_shows_as_in_review(client: Client) -> None:
    body = await (await client.get("/api/v1/items/herald/reply", headers=bearer(ALICE))).json()

    assert (body["parent"]["action"], body["parent"]["decided_by"]) == ("review", "auto")
    assert body["parent"]["decision_reason"] is None


async def test_a_parent_on_another_site_is_not_shown_nor_counts_for_an_anonymous_author(
    client: Client,
) -> None:
    response = await client.get("/api/v1/items/herald/orphan", headers=bearer(ALICE))

    body = await response.json()
    _check_documented(body)
    assert body["item"]["parent_id"] == "elsewhere"  # a gazette comment: not this site's
    assert body["parent"] is None
    assert body["author_counts"] is None
    assert body["history"] == []
    assert (body["item"]["thread_url"], body["item"]["thread_title"]) == (None, None)
