"""The author routes over the in-memory store: who may trust and block, validation, the JSON
errors, the audit entries, and the status shown on the item."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from service.adapters.token_file import TokenRegistry
from service.domain.access import Identity, Role
from service.domain.authors import AuthorStatus
from service.entrypoints.http.app import build_app
from service.entrypoints.http.openapi import document
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, BOB, DECISIONS_TOPIC, ROOT, bearer, registry

Client = TestClient[web.Request, web.Application]
NOW = FixedClock().moment
HERALD_CMS = "site-token-of-the-herald-backend"
HOSTILE = "<script>alert(1)</script> \u202e/../%2e"


def _registry() -> TokenRegistry:
    site = Identity("herald-cms", Role.SITE, frozenset({"herald"}))
    known = [(e.identity, e.digest.hex()) for e in registry()._entries]
    return TokenRegistry([*known, (site, hashlib.sha256(HERALD_CMS.encode()).hexdigest())])


@pytest.fixture
def store() -> InMemoryReviewStore:
    s = InMemoryReviewStore()
    s.add(
        review_item("herald", "c-1", author_id="a-1"), review_item("herald", "c-2", author_id=None)
    )
    return s


@pytest.fixture
async def client(store: InMemoryReviewStore) -> AsyncIterator[Client]:
    service = ReviewService(store, FixedClock(), decisions_topic=DECISIONS_TOPIC)
    async with TestClient(TestServer(build_app(service, _registry()))) as c:
        yield c


def author_url(author: str, site: str = "herald") -> URL:
    return URL(f"/api/v1/sites/{site}/authors/{quote(author, safe='')}", encoded=True)


async def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    return body


def schema(name: str) -> dict[str, Any]:
    doc = document()
    return {**doc["components"]["schemas"][name], "components": doc["components"]}


async def test_a_sites_moderator_blocks_an_author_and_it_is_audited(
    client: Client, store: InMemoryReviewStore
) -> None:
    response = await client.put(
        author_url("a-1"), json={"status": "blocked", "note": "spam bot"}, headers=bearer(ALICE)
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    jsonschema.validate(body, schema("AuthorChange"))
    assert body == {
        "author": {
            "site_id": "herald",
            "author_id": "a-1",
            "status": "blocked",
            "note": "spam bot",
            "set_by": "moderator:alice",
            "set_at": "2026-11-27T12:00:00.000Z",
        },
        "previous": None,
    }
    assert store.author_marks["herald", "a-1"].status is AuthorStatus.BLOCKED
    [entry] = store.audit
    assert (entry.actor, entry.action, entry.site_id) == (
        "moderator:alice",
        "block_author",
        "herald",
    )
    assert entry.detail == "author 'a-1': blocked; note: spam bot"


async def test_the_item_shows_its_authors_status_with_who_and_when(client: Client) -> None:
    await client.put(author_url("a-1"), json={"status": "trusted"}, headers=bearer(BOB))

    marked = await (await client.get("/api/v1/items/herald/c-1", headers=bearer(ALICE))).json()
    anonymous = await (await client.get("/api/v1/items/herald/c-2", headers=bearer(ALICE))).json()

    assert marked["author_status"] == {
        "site_id": "herald",
        "author_id": "a-1",
        "status": "trusted",
        "note": None,
        "set_by": "moderator:bob",
        "set_at": "2026-11-27T12:00:00.000Z",
    }
    assert anonymous["author_status"] is None


async def test_unblocking_lifts_the_status_once_and_is_audited(
    client: Client, store: InMemoryReviewStore
) -> None:
    await client.put(author_url("a-1"), json={"status": "blocked"}, headers=bearer(ALICE))

    lifted = await client.delete(author_url("a-1"), headers=bearer(ROOT))
    again = await client.delete(author_url("a-1"), headers=bearer(ROOT))

    assert lifted.status == 200
    body = await lifted.json()
    jsonschema.validate(body, schema("AuthorChange"))
    assert body["author"] is None
    assert body["previous"]["status"] == "blocked"
    await error(again, 404, "not_found")
    assert ("herald", "a-1") not in store.author_marks
    assert [(a.actor, a.action) for a in store.audit] == [
        ("moderator:alice", "block_author"),
        ("admin:root", "unblock_author"),
    ]
    await error(await client.get(author_url("a-1"), headers=bearer(ALICE)), 404, "not_found")


async def test_the_sites_list_pages_and_filters(client: Client) -> None:
    for n in range(3):
        await client.put(author_url(f"u-{n}"), json={"status": "blocked"}, headers=bearer(ALICE))
    await client.put(author_url("u-9"), json={"status": "trusted"}, headers=bearer(ALICE))

    first = await (
        await client.get("/api/v1/sites/herald/authors?limit=2", headers=bearer(ALICE))
    ).json()
    rest = await (
        await client.get(
            f"/api/v1/sites/herald/authors?limit=2&cursor={first['next_cursor']}",
            headers=bearer(ALICE),
        )
    ).json()
    trusted = await (
        await client.get("/api/v1/sites/herald/authors?status=trusted", headers=bearer(ALICE))
    ).json()

    assert [m["author_id"] for m in first["authors"] + rest["authors"]] == [
        "u-0",
        "u-1",
        "u-2",
        "u-9",
    ]
    assert rest["next_cursor"] is None
    assert [m["author_id"] for m in trusted["authors"]] == ["u-9"]


@pytest.mark.parametrize(
    "case",
    [
        ("PUT", ALICE, "tech-blog", "forbidden_site"),  # alice moderates the herald only
        ("DELETE", ALICE, "tech-blog", "forbidden_site"),
        ("GET", ALICE, "tech-blog", "forbidden_site"),
        ("PUT", HERALD_CMS, "herald", "forbidden_role"),  # a site's backend may not
        ("DELETE", HERALD_CMS, "herald", "forbidden_role"),
        ("GET", HERALD_CMS, "herald", "forbidden_role"),
    ],
)
async def test_only_admins_and_the_sites_moderators_may(
    client: Client, store: InMemoryReviewStore, case: tuple[str, str, str, str]
) -> None:
    method, token, site, code = case
    body = {"status": "blocked"} if method == "PUT" else None
    response = await client.request(
        method, author_url("a-1", site), json=body, headers=bearer(token)
    )

    await error(response, 403, code)
    assert store.author_marks == {}
    assert store.audit == []


async def test_admins_and_moderators_of_several_sites_may(client: Client) -> None:
    for token, site in ((ROOT, "tech-blog"), (BOB, "tech-blog"), (ALICE, "herald")):
        response = await client.put(
            author_url("a-1", site), json={"status": "blocked"}, headers=bearer(token)
        )
        assert response.status == 200, (token, await response.text())


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "'status'"),
        ({"status": "banned"}, "'status'"),
        ({"status": None}, "'status'"),
        ({"status": "blocked", "note": 7}, "'note'"),
        ({"status": "blocked", "note": ""}, "'note'"),
        ({"status": "blocked", "note": "x" * 2001}, "'note'"),
        ({"status": "blocked", "note": "a\x00b"}, "'note'"),
        ({"status": "blocked", "until": "tomorrow"}, "unknown field"),
    ],
)
async def test_a_bad_body_is_a_400_that_says_what_is_wrong(
    client: Client, store: InMemoryReviewStore, body: dict[str, Any], fragment: str
) -> None:
    response = await client.put(author_url("a-1"), json=body, headers=bearer(ALICE))

    found = await error(response, 400, "invalid_request")
    assert fragment in found["error"]["message"]
    assert store.author_marks == {}


async def test_bad_json_and_bad_paths_and_queries_are_400s(client: Client) -> None:
    raw = await client.put(
        author_url("a-1"), data=b"{not json", headers=bearer(ALICE) | {"Content-Type": "x"}
    )
    await error(raw, 400, "invalid_json")
    control = await client.put(
        author_url("a\x01b"), json={"status": "blocked"}, headers=bearer(ALICE)
    )
    await error(control, 400, "invalid_request")
    long_id = await client.get(author_url("a" * 2049), headers=bearer(ALICE))
    await error(long_id, 400, "invalid_request")
    bad_site = await client.get(author_url("a-1", "bad%20site"), headers=bearer(ROOT))
    await error(bad_site, 400, "invalid_request")
    for query in ("status=banned", "limit=0", "cursor=%25", "colour=red"):
        response = await client.get(f"/api/v1/sites/herald/authors?{query}", headers=bearer(ALICE))
        await error(response, 400, "invalid_request")
    forged = await client.get("/api/v1/sites/herald/authors?cursor=Zm9v", headers=bearer(ALICE))
    await error(forged, 400, "invalid_cursor")


async def test_hostile_and_slashed_author_ids_round_trip_as_they_are(
    client: Client, store: InMemoryReviewStore
) -> None:
    response = await client.put(
        author_url(HOSTILE), json={"status": "blocked", "note": HOSTILE}, headers=bearer(ALICE)
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["author"]["author_id"] == HOSTILE
    assert store.author_marks["herald", HOSTILE].note == HOSTILE
    found = await (await client.get(author_url(HOSTILE), headers=bearer(ALICE))).json()
    assert found["author"]["author_id"] == HOSTILE


async def test_asking_for_the_status_in_force_changes_nothing(
    client: Client, store: InMemoryReviewStore
) -> None:
    await client.put(author_url("a-1"), json={"status": "blocked"}, headers=bearer(ALICE))

    again = await (
        await client.put(author_url("a-1"), json={"status": "blocked"}, headers=bearer(ROOT))
    ).json()

    assert again["author"] == again["previous"]
    assert again["author"]["set_by"] == "moderator:alice"
    assert len(store.audit) == 1
