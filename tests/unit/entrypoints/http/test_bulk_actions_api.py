"""Bulk actions over HTTP on the in-memory store, the clock driven by the test: nothing is
decided or published inside the window, one apply after it, undo refused once applied,
authorisation per site and per moderator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.domain.review import ReviewStatus
from service.entrypoints.http.app import build_app
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, BOB, DECISIONS_TOPIC, ROOT, bearer, registry

Client = TestClient[web.Request, web.Application]
WINDOW = timedelta(seconds=3)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(clock: FixedClock) -> InMemoryReviewStore:
    s = InMemoryReviewStore()
    s.add(*(review_item("herald", f"c-{n}", queued_at=clock.moment) for n in range(4)))
    s.add(review_item("tech-blog", "t-1", queued_at=clock.moment))
    return s


@pytest.fixture
def service(store: InMemoryReviewStore, clock: FixedClock) -> ReviewService:
    return ReviewService(store, clock, decisions_topic=DECISIONS_TOPIC, undo_window=WINDOW)


@pytest.fixture
async def client(service: ReviewService) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(service, registry()))) as c:
        yield c


async def _create(client: Client, token: str, **body: Any) -> Any:
    doc = {"site_id": "herald", "comment_ids": ["c-0", "c-1"], "action": "approve"} | body
    return await client.post("/api/v1/bulk-actions", json=doc, headers=bearer(token))


async def test_nothing_is_decided_in_the_window_and_it_applies_once_after(
    client: Client, store: InMemoryReviewStore, service: ReviewService, clock: FixedClock
) -> None:
    response = await _create(client, ALICE)
    assert response.status == 200, await response.text()
    body = await response.json()
    action = body["bulk_action"]
    assert body["undo_seconds"] == 3
    assert action["status"] == "pending"
    assert store.items["herald", "c-0"].claimed_by == "alice"

    clock.moment += WINDOW - timedelta(milliseconds=1)
    assert await service.bulk.apply_due() == []
    assert store.outbox == []
    assert store.items["herald", "c-0"].status is ReviewStatus.PENDING

    clock.moment += timedelta(milliseconds=1)
    assert [a.id for a in await service.bulk.apply_due()] == [action["id"]]
    assert await service.bulk.apply_due() == []  # a second apply is refused
    assert await service.bulk.apply(action["id"]) is None
    assert len(store.outbox) == 2
    assert {store.items["herald", c].decided_by for c in ("c-0", "c-1")} == {"moderator:alice"}

    undo = await client.post(
        f"/api/v1/bulk-actions/{action['id']}/undo", json={}, headers=bearer(ALICE)
    )
    assert undo.status == 409
    assert (await undo.json())["error"]["code"] == "already_applied"


async def test_an_undone_action_is_audited_and_never_published(
    client: Client, store: InMemoryReviewStore, service: ReviewService, clock: FixedClock
) -> None:
    action = (await (await _create(client, ALICE)).json())["bulk_action"]
    listed = await (await client.get("/api/v1/bulk-actions", headers=bearer(ALICE))).json()
    assert [a["id"] for a in listed["bulk_actions"]] == [action["id"]]

    undo = await client.post(
        f"/api/v1/bulk-actions/{action['id']}/undo", json={}, headers=bearer(ALICE)
    )
    assert undo.status == 200
    assert (await undo.json())["bulk_action"]["status"] == "undone"
    clock.moment += WINDOW * 2
    assert await service.bulk.apply_due() == []
    assert store.outbox == []
    assert [e.action for e in store.audit] == ["bulk_create", "bulk_undo"]
    again = await client.post(
        f"/api/v1/bulk-actions/{action['id']}/undo", json={}, headers=bearer(ALICE)
    )
    assert (await again.json())["error"]["code"] == "already_undone"


async def test_bulk_actions_are_authorised_per_site_and_per_moderator(
    client: Client, store: InMemoryReviewStore
) -> None:
    other_site = await _create(client, ALICE, site_id="tech-blog", comment_ids=["t-1"])
    assert other_site.status == 403
    assert (await other_site.json())["error"]["code"] == "forbidden_site"
    assert store.bulk == {}

    action = (await (await _create(client, ALICE)).json())["bulk_action"]
    by_bob = await client.post(
        f"/api/v1/bulk-actions/{action['id']}/undo", json={}, headers=bearer(BOB)
    )
    assert by_bob.status == 403
    assert (await by_bob.json())["error"]["code"] == "forbidden_role"
    # another moderator cannot take the held items either
    taken = await _create(client, BOB, comment_ids=["c-1", "c-2"])
    assert taken.status == 409
    assert (await taken.json())["error"]["code"] == "claimed_by_other"
    by_root = await client.post(
        f"/api/v1/bulk-actions/{action['id']}/undo", json={}, headers=bearer(ROOT)
    )
    assert by_root.status == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"comment_ids": []}, "invalid_request"),
        ({"comment_ids": ["c-0", "c-0"]}, "invalid_request"),
        ({"action": "review"}, "invalid_request"),
        ({"reason": "because"}, "invalid_request"),
        ({"extra": 1}, "invalid_request"),
        ({"comment_ids": ["c-0", "nope"]}, "not_found"),
    ],
)
async def test_bad_bulk_requests_are_refused_whole(
    client: Client, store: InMemoryReviewStore, body: dict[str, Any], code: str
) -> None:
    response = await _create(client, ALICE, **body)
    assert (await response.json())["error"]["code"] == code
    assert store.bulk == {}
    assert store.items["herald", "c-0"].claimed_by is None


async def test_an_unknown_or_malformed_action_id_is_refused(client: Client) -> None:
    missing = await client.get("/api/v1/bulk-actions/" + "a" * 32, headers=bearer(ALICE))
    assert (missing.status, (await missing.json())["error"]["code"]) == (404, "not_found")
    bad = await client.get("/api/v1/bulk-actions/NOT-AN-ID", headers=bearer(ALICE))
    assert bad.status == 400
