"""The review API over an in-memory store: auth, scope, errors, decisions, pagination."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from service.domain.model import Action, Language, Scores
from service.domain.review import HistoryEntry, ReviewStatus
from service.domain.spot_check import wilson_interval
from service.entrypoints.http.openapi import document
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, BOB, DECISIONS_TOPIC, ROOT, app_over, bearer
from tests.schemas import validate

Client = TestClient[web.Request, web.Application]
NOW = FixedClock().moment
HOSTILE_TEXT = "<img src=x onerror=\"document.title='pwned'\"> \u202e <script>alert(1)</script>"
HOSTILE_AUTHOR = "<script>alert(1)</script>"


@pytest.fixture
def store() -> InMemoryReviewStore:
    s = InMemoryReviewStore()
    s.add(
        review_item("herald", "c-1", queued_at=NOW - timedelta(hours=3)),
        review_item("herald", "c-2", queued_at=NOW - timedelta(hours=2), abuse=0.8),
        review_item("tech-blog", "t-1", queued_at=NOW - timedelta(hours=1)),
    )
    return s


@pytest.fixture
async def client(store: InMemoryReviewStore) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app_over(store))) as c:
        yield c


def _url(path: str) -> URL:
    return URL(path, encoded=True)


async def _error(response: Any, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)


API_ROUTES = [
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/queue"),
    ("POST", "/api/v1/queue/claim"),
    ("POST", "/api/v1/queue/release"),
    ("GET", "/api/v1/items/herald/c-1"),
    ("POST", "/api/v1/items/herald/c-1/decision"),
    ("POST", "/api/v1/decisions"),
    ("POST", "/api/v1/bulk-actions"),
    ("GET", "/api/v1/bulk-actions"),
    ("GET", "/api/v1/bulk-actions/{action_id}"),
    ("POST", "/api/v1/bulk-actions/{action_id}/undo"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/spot-checks"),
    ("POST", "/api/v1/admin/policy/reload"),
    ("POST", "/api/v1/moderate"),
    ("GET", "/api/v1/sites/herald/authors"),
    ("GET", "/api/v1/sites/herald/authors/a-1"),
    ("PUT", "/api/v1/sites/herald/authors/a-1"),
    ("DELETE", "/api/v1/sites/herald/authors/a-1"),
    ("GET", "/api/v1/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-token"), {"Authorization": ALICE}, {"Authorization": f"Basic {ALICE}"}],
)
async def test_every_api_route_refuses_a_missing_or_unknown_token(
    client: Client, store: InMemoryReviewStore, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, headers=headers, json={})
    await _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert store.items["herald", "c-1"].status is ReviewStatus.PENDING


def test_the_token_test_covers_every_api_route() -> None:
    documented = {
        (
            method.upper(),
            path.replace("{site_id}", "herald")
            .replace("{comment_id}", "c-1")
            .replace("{author_id}", "a-1"),
        )
        for path, operations in document()["paths"].items()
        if path.startswith("/api/")
        for method in operations
        if method != "parameters"
    }
    assert set(API_ROUTES[:-1]) == documented


async def test_health_needs_no_token(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_me_names_the_caller_and_its_sites(client: Client) -> None:
    response = await client.get("/api/v1/me", headers=bearer(BOB))
    assert await response.json() == {
        "id": "bob",
        "role": "moderator",
        "sites": ["herald", "tech-blog"],
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/queue?site=tech-blog", None),
        ("GET", "/api/v1/stats?site=tech-blog", None),
        ("POST", "/api/v1/queue/claim", {"site_id": "tech-blog"}),
        ("POST", "/api/v1/queue/release", {"site_id": "tech-blog", "comment_ids": ["t-1"]}),
        ("GET", "/api/v1/items/tech-blog/t-1", None),
        ("POST", "/api/v1/items/tech-blog/t-1/decision", {"action": "approve"}),
        ("POST", "/api/v1/items/tech-blog/unknown/decision", {"action": "approve"}),
    ],
)
async def test_a_site_outside_the_token_is_forbidden(
    client: Client, store: InMemoryReviewStore, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, headers=bearer(ALICE), json=body)
    await _error(response, 403, "forbidden_site")
    assert store.items["tech-blog", "t-1"].status is ReviewStatus.PENDING
    assert store.items["tech-blog", "t-1"].claimed_by is None
    assert store.outbox == []


async def test_a_moderator_sees_only_the_sites_of_the_token(client: Client) -> None:
    alice = await (await client.get("/api/v1/queue", headers=bearer(ALICE))).json()
    bob = await (await client.get("/api/v1/queue", headers=bearer(BOB))).json()
    assert [i["comment_id"] for i in alice["items"]] == ["c-1", "c-2"]
    assert [i["comment_id"] for i in bob["items"]] == ["c-1", "c-2", "t-1"]
    stats = await (await client.get("/api/v1/stats", headers=bearer(ALICE))).json()
    assert [s["site_id"] for s in stats["sites"]] == ["herald"]


async def test_the_audit_log_is_for_admins(client: Client) -> None:
    await _error(await client.get("/api/v1/audit", headers=bearer(ALICE)), 403, "forbidden_role")
    await client.post("/api/v1/queue/claim", headers=bearer(ALICE), json={"site_id": "herald"})
    response = await client.get("/api/v1/audit", headers=bearer(ROOT))
    assert response.status == 200
    entries = (await response.json())["entries"]
    assert [(e["actor"], e["action"], e["comment_id"]) for e in entries] == [
        ("moderator:alice", "claim", "c-2"),
        ("moderator:alice", "claim", "c-1"),
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b'{"action": NaN}', "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"null", "invalid_json"),
        (b'{"action": "review"}', "invalid_request"),
        (b'{"action": "approve", "reason": "because"}', "invalid_request"),
        (b'{"action": "approve", "note": 7}', "invalid_request"),
        (b'{"action": "approve", "extra": 1}', "invalid_request"),
    ],
)
async def test_a_malformed_decision_is_refused(
    client: Client, store: InMemoryReviewStore, body: bytes, code: str
) -> None:
    response = await client.post(
        "/api/v1/items/herald/c-1/decision",
        data=body,
        headers={**bearer(ALICE), "Content-Type": "application/json"},
    )
    await _error(response, 400, code)
    assert store.items["herald", "c-1"].status is ReviewStatus.PENDING


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/queue/claim", {"site_id": "herald", "count": 0}),
        ("/api/v1/queue/claim", {"site_id": "herald", "count": True}),
        ("/api/v1/queue/claim", {"site_id": "herald", "order": "newest"}),
        ("/api/v1/queue/claim", {"site_id": "bad site"}),
        ("/api/v1/queue/release", {"site_id": "herald", "comment_ids": []}),
        ("/api/v1/queue/release", {"site_id": "herald", "comment_ids": ["a\nb"]}),
        ("/api/v1/decisions", {"decisions": []}),
        ("/api/v1/decisions", {"decisions": [{"site_id": "herald", "action": "approve"}]}),
    ],
)
async def test_an_invalid_body_is_refused(client: Client, path: str, body: Any) -> None:
    await _error(await client.post(path, headers=bearer(ALICE), json=body), 400, "invalid_request")


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=x",
        "older_than=-1",
        "site=a%20b",
        "reason=nope",
        "cursor=",
        "cursor=%C3%A9",
        "sites=herald",
        "limit=1&limit=2",
    ],
)
async def test_invalid_query_parameters_are_refused(client: Client, query: str) -> None:
    response = await client.get(_url(f"/api/v1/queue?{query}"), headers=bearer(ALICE))
    await _error(response, 400, "invalid_request")


async def test_an_oversized_body_is_refused(store: InMemoryReviewStore) -> None:
    async with TestClient(TestServer(app_over(store, client_max_size=1024))) as small:
        response = await small.post(
            "/api/v1/items/herald/c-1/decision",
            headers=bearer(ALICE),
            json={"action": "approve", "note": "x" * 2000},
        )
        await _error(response, 413, "body_too_large")
    assert store.items["herald", "c-1"].status is ReviewStatus.PENDING


async def test_unknown_items_routes_and_methods_are_json_errors(client: Client) -> None:
    await _error(
        await client.get("/api/v1/items/herald/nope", headers=bearer(ALICE)), 404, "not_found"
    )
    response = await client.post(
        "/api/v1/items/herald/nope/decision", headers=bearer(ALICE), json={"action": "reject"}
    )
    await _error(response, 404, "not_found")
    await _error(await client.get("/api/v1/nowhere", headers=bearer(ALICE)), 404, "not_found")
    await _error(await client.get("/nowhere"), 404, "not_found")
    response = await client.delete("/api/v1/queue", headers=bearer(ALICE))
    await _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_a_decision_is_written_with_its_outbox_record(
    client: Client, store: InMemoryReviewStore
) -> None:
    response = await client.post(
        "/api/v1/items/herald/c-1/decision",
        headers=bearer(ALICE),
        json={"action": "reject", "reason": "spam", "note": "link farm"},
    )
    assert response.status == 200
    item = (await response.json())["item"]
    assert item["status"] == "decided"
    assert item["decision"] == "reject"
    assert item["decided_by"] == "moderator:alice"
    assert item["decision_reason"] == "spam"
    [record] = store.outbox
    assert record.topic == DECISIONS_TOPIC
    assert record.key == b"herald:c-1"
    event = json.loads(record.value)
    validate("decision.v1", event)
    assert event["event_id"] == record.event_id
    assert (event["action"], event["final"], event["decided_by"]) == (
        "reject",
        True,
        "moderator:alice",
    )
    assert event["reasons"] == [{"code": "spam", "detail": "link farm"}]
    assert event["decided_at"] == "2026-11-27T12:00:00.000Z"


async def test_deciding_twice_is_a_conflict(client: Client, store: InMemoryReviewStore) -> None:
    path = "/api/v1/items/herald/c-1/decision"
    first = await client.post(path, headers=bearer(ALICE), json={"action": "approve"})
    assert first.status == 200
    second = await client.post(path, headers=bearer(BOB), json={"action": "reject"})
    await _error(second, 409, "already_decided")
    assert store.items["herald", "c-1"].decision is Action.APPROVE
    assert len(store.outbox) == 1


async def test_an_item_claimed_by_another_moderator_cannot_be_decided(
    client: Client, store: InMemoryReviewStore
) -> None:
    claimed = await client.post(
        "/api/v1/queue/claim", headers=bearer(BOB), json={"site_id": "herald", "count": 1}
    )
    assert [i["comment_id"] for i in (await claimed.json())["items"]] == ["c-1"]
    response = await client.post(
        "/api/v1/items/herald/c-1/decision", headers=bearer(ALICE), json={"action": "approve"}
    )
    await _error(response, 409, "claimed_by_other")
    assert store.outbox == []
    mine = await client.post(
        "/api/v1/items/herald/c-1/decision", headers=bearer(BOB), json={"action": "approve"}
    )
    assert mine.status == 200


async def test_claim_by_risk_hands_out_the_riskiest_first_with_a_lease(client: Client) -> None:
    response = await client.post(
        "/api/v1/queue/claim",
        headers=bearer(ALICE),
        json={"site_id": "herald", "count": 1, "order": "risk"},
    )
    [item] = (await response.json())["items"]
    assert item["comment_id"] == "c-2"
    assert item["claimed_by"] == "alice"
    assert item["claim_expires_at"] == "2026-11-27T12:10:00.000Z"


async def test_release_returns_only_the_callers_claims(
    client: Client, store: InMemoryReviewStore
) -> None:
    await client.post(
        "/api/v1/queue/claim", headers=bearer(BOB), json={"site_id": "herald", "count": 1}
    )
    await client.post("/api/v1/queue/claim", headers=bearer(ALICE), json={"site_id": "herald"})
    response = await client.post(
        "/api/v1/queue/release",
        headers=bearer(ALICE),
        json={"site_id": "herald", "comment_ids": ["c-1", "c-2", "nope"]},
    )
    assert await response.json() == {"released": ["c-2"]}
    assert store.items["herald", "c-1"].claimed_by == "bob"
    assert store.items["herald", "c-2"].claimed_by is None
    assert [(a.actor, a.action, a.comment_id) for a in store.audit][-1] == (
        "moderator:alice",
        "release",
        "c-2",
    )


async def test_bulk_decisions_report_each_item(client: Client, store: InMemoryReviewStore) -> None:
    await client.post(
        "/api/v1/items/herald/c-2/decision", headers=bearer(ALICE), json={"action": "approve"}
    )
    response = await client.post(
        "/api/v1/decisions",
        headers=bearer(ALICE),
        json={
            "decisions": [
                {"site_id": "herald", "comment_id": "c-1", "action": "reject", "reason": "abuse"},
                {"site_id": "herald", "comment_id": "c-2", "action": "reject"},
                {"site_id": "herald", "comment_id": "gone", "action": "approve"},
                {"site_id": "tech-blog", "comment_id": "t-1", "action": "approve"},
            ]
        },
    )
    assert response.status == 200
    results = (await response.json())["results"]
    assert [(r["comment_id"], r["ok"], r["error"] and r["error"]["code"]) for r in results] == [
        ("c-1", True, None),
        ("c-2", False, "already_decided"),
        ("gone", False, "not_found"),
        ("t-1", False, "forbidden_site"),
    ]
    assert results[0]["item"]["decision"] == "reject"
    assert store.items["herald", "c-1"].decision is Action.REJECT
    assert store.items["tech-blog", "t-1"].status is ReviewStatus.PENDING


async def test_cursor_pagination_visits_every_item_once(store: InMemoryReviewStore) -> None:
    store.add(
        *(review_item("herald", f"p-{n}", queued_at=NOW - timedelta(minutes=n)) for n in range(7))
    )
    async with TestClient(TestServer(app_over(store))) as client:
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            query = {"site": "herald", "limit": "3", **({"cursor": cursor} if cursor else {})}
            body = await (
                await client.get("/api/v1/queue", params=query, headers=bearer(ALICE))
            ).json()
            seen += [i["comment_id"] for i in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == ["c-1", "c-2", *(f"p-{n}" for n in range(6, -1, -1))]
        response = await client.get(
            "/api/v1/queue", params={"cursor": "forged"}, headers=bearer(ALICE)
        )
        await _error(response, 400, "invalid_cursor")


async def test_queue_filters_by_reason_and_age(client: Client) -> None:
    older = await client.get("/api/v1/queue?older_than=9000", headers=bearer(BOB))
    assert [i["comment_id"] for i in (await older.json())["items"]] == ["c-1"]
    by_reason = await client.get("/api/v1/queue?reason=abuse_uncertain", headers=bearer(BOB))
    assert (await by_reason.json())["items"] == []


async def test_hostile_text_and_ids_come_back_as_they_are(store: InMemoryReviewStore) -> None:
    odd_id = "a/b?c#d%<e>"
    store.add(review_item("herald", odd_id, text=HOSTILE_TEXT, author_name=HOSTILE_AUTHOR))
    async with TestClient(TestServer(app_over(store))) as client:
        path = "/api/v1/items/herald/a%2Fb%3Fc%23d%25%3Ce%3E"
        response = await client.get(_url(path), headers=bearer(ALICE))
        assert response.status == 200
        assert response.content_type == "application/json"
        item = (await response.json())["item"]
        assert (item["comment_id"], item["text"], item["author"]["name"]) == (
            odd_id,
            HOSTILE_TEXT,
            HOSTILE_AUTHOR,
        )
        decided = await client.post(
            _url(f"{path}/decision"), headers=bearer(ALICE), json={"action": "reject"}
        )
        assert decided.status == 200
        assert store.items["herald", odd_id].decision is Action.REJECT


async def test_detail_holds_scores_reasons_and_the_authors_history(
    client: Client, store: InMemoryReviewStore
) -> None:
    store.history["herald", "a-1"] = [
        HistoryEntry("old-1", "first", None, Action.APPROVE, "auto", NOW - timedelta(days=2)),
        HistoryEntry(
            "old-2", "second", None, Action.REJECT, "moderator:bob", NOW - timedelta(days=1)
        ),
    ]
    body = await (await client.get("/api/v1/items/herald/c-2", headers=bearer(ALICE))).json()
    assert body["item"]["scores"] == {"spam": 0.6, "abuse": 0.8}
    assert body["item"]["risk"] == 0.8
    assert body["item"]["reasons"][0]["code"] == "spam_uncertain"
    assert [(h["comment_id"], h["action"]) for h in body["history"]] == [
        ("c-2", "review"),  # the item itself and the author's other waiting one, as the
        ("c-1", "review"),  # SQL stores list them
        ("old-2", "reject"),
        ("old-1", "approve"),
    ]


async def test_an_item_shows_the_sub_scores_the_model_gave_and_the_language(
    client: Client, store: InMemoryReviewStore
) -> None:
    store.add(
        replace(
            review_item("herald", "fr-1"),
            scores=Scores(spam=0.1, abuse=0.4, threat=0.7, profanity=0.0),
            language=Language("fr", detected=True),
        )
    )
    body = await (await client.get("/api/v1/items/herald/fr-1", headers=bearer(ALICE))).json()
    plain = await (await client.get("/api/v1/items/herald/c-1", headers=bearer(ALICE))).json()

    assert body["item"]["scores"] == {"spam": 0.1, "abuse": 0.4, "threat": 0.7, "profanity": 0.0}
    assert body["item"]["language"] == {"code": "fr", "detected": True}
    assert plain["item"]["language"] is None
    schema = {"$ref": "#/components/schemas/Item", "components": document()["components"]}
    for item in (body["item"], plain["item"]):
        jsonschema.Draft202012Validator(schema).validate(item)


async def test_stats_give_depth_and_oldest_age_per_site(client: Client) -> None:
    body = await (await client.get("/api/v1/stats", headers=bearer(ROOT))).json()
    assert body["sites"] == [
        {
            "site_id": "herald",
            "depth": 2,
            "claimed": 0,
            "oldest_queued_at": "2026-11-27T09:00:00.000Z",
            "oldest_age_seconds": 10800.0,
        },
        {
            "site_id": "tech-blog",
            "depth": 1,
            "claimed": 0,
            "oldest_queued_at": "2026-11-27T11:00:00.000Z",
            "oldest_age_seconds": 3600.0,
        },
    ]


async def test_an_unavailable_store_is_a_503_to_retry(
    client: Client, store: InMemoryReviewStore
) -> None:
    store.unavailable = True
    await _error(await client.get("/api/v1/queue", headers=bearer(ALICE)), 503, "unavailable")


async def test_an_unexpected_failure_is_a_json_500_without_details(
    client: Client, store: InMemoryReviewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "queue_stats", broken)
    response = await client.get("/api/v1/stats", headers=bearer(ALICE))
    await _error(response, 500, "internal_error")
    assert "secret" not in await response.text()


async def test_the_page_is_served_with_security_headers(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    script = await client.get("/static/app.js")
    assert script.status == 200
    assert "innerHTML" not in await script.text()
    api = await client.get("/api/v1/queue", headers=bearer(ALICE))
    assert api.headers["Cache-Control"] == "no-store"


async def test_a_claim_that_expired_can_be_taken_by_another(store: InMemoryReviewStore) -> None:
    clock = FixedClock()
    async with TestClient(TestServer(app_over(store, clock))) as client:
        await client.post("/api/v1/queue/claim", headers=bearer(BOB), json={"site_id": "herald"})
        clock.moment = NOW + timedelta(minutes=11)
        response = await client.post(
            "/api/v1/items/herald/c-1/decision", headers=bearer(ALICE), json={"action": "approve"}
        )
        assert response.status == 200
    assert store.items["herald", "c-1"].decided_at == datetime(2026, 11, 27, 12, 11, tzinfo=UTC)
    assert replace(store.items["herald", "c-1"], note=None).decided_by == "moderator:alice"


async def test_spot_checks_give_each_sites_error_rate_with_its_wilson_interval(
    client: Client, store: InMemoryReviewStore
) -> None:
    store.spot_labels += [("herald", Action.APPROVE, Action.REJECT)]
    store.spot_labels += [("herald", Action.APPROVE, Action.APPROVE)] * 3
    store.spot_labels += [("tech-blog", Action.REJECT, Action.REJECT)]

    response = await client.get("/api/v1/spot-checks?site=herald", headers=bearer(ALICE))

    assert response.status == 200
    [herald] = (await response.json())["spot_checks"]
    interval = wilson_interval(1, 4)
    assert interval is not None
    assert herald == {
        "site_id": "herald",
        "auto_action": "approve",
        "kind": "false_approve",
        "checked": 4,
        "overturned": 1,
        "waiting": 0,
        "rate": 0.25,
        "low": pytest.approx(interval.low),
        "high": pytest.approx(interval.high),
    }
    await _error(
        await client.get("/api/v1/spot-checks?site=tech-blog", headers=bearer(ALICE)),
        403,
        "forbidden_site",
    )
    await _error(
        await client.get("/api/v1/spot-checks?sight=herald", headers=bearer(ALICE)),
        400,
        "invalid_request",
    )
    everything = await (await client.get("/api/v1/spot-checks", headers=bearer(ROOT))).json()
    assert [e["site_id"] for e in everything["spot_checks"]] == ["herald", "tech-blog"]
