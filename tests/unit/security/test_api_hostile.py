"""The API under hostile requests: no token, another site's token, SQL metacharacters in every
parameter, oversized and malformed bodies. Every answer is a JSON error or a correct result,
never a 500, and no body gives away a stack trace, a class name or a file path."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from service.adapters.sql.store import SqlReviewStore
from service.domain.review import ReviewStatus
from service.entrypoints.http.openapi import document
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, ROOT, app_over, bearer, stored_comment

Client = TestClient[web.Request, web.Application]

SITE, OTHER_SITE = "herald", "tech-blog"  # ALICE moderates SITE only
TRICKY_ID = 'it\'s; -- 100%_"x" \u202e\U0001f600'
SQL_META = [
    "'",
    '"',
    "%",
    "_",
    "%%",
    "c_1",
    "c%",
    "--",
    "c-1'--",
    ";",
    "c-1; DROP TABLE comments; --",
    "' OR '1'='1",
    "\\",
    "\x00",
    "c-1\x00",
    "h\u00e9rald",
    "\u202e",
    "\U0001f600",
    "*",
    "",
    "[]",
]
# A body that names a stack trace, an exception class or a source file gives too much away.
LEAK = re.compile(
    r"Traceback|File \"|\.py\b|/work/|site-packages|sqlite3|psycopg"
    r"|[A-Z][A-Za-z]+(Error|Exception)\b"
)
# Every route, and what each path parameter is filled with for the routes that take them.
PATH_PARAMS = {
    "site_id": SITE,
    "comment_id": "c-1",
    "action_id": "0" * 32,
    "author_id": "a-1",
}
PATH_PARAMS_ITEM = "/api/v1/items/{site_id}/{comment_id}"


def _api_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, canonical path) of every /api route of the app, as its router holds them."""
    return sorted(
        {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api/")
            and route.method != "HEAD"
        }
    )


def _json_body_routes(app: web.Application) -> list[tuple[str, str]]:
    """The routes that read a JSON body, as the OpenAPI document says."""
    paths = document()["paths"]
    return [
        (m, p) for m, p in _api_routes(app) if "requestBody" in paths.get(p, {}).get(m.lower(), {})
    ]


def _fill(path: str, **values: str) -> URL:
    params = {**PATH_PARAMS, **values}
    for name, value in params.items():
        path = path.replace(f"{{{name}}}", quote(value, safe=""))
    return URL(path, encoded=True)


async def _json_error(response: Any, status: int | None = None) -> dict[str, Any]:
    """The error body, checked for shape and for leaks."""
    text = await response.text()
    if status is not None:
        assert response.status == status, text
    assert 400 <= response.status < 500, text
    assert response.content_type == "application/json", text
    assert not LEAK.search(text), text
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    return dict(body["error"])


@pytest.fixture
async def sql_store(tmp_path: Path) -> AsyncIterator[SqlReviewStore]:
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    await store.migrate()
    await store.record_decisions(
        [
            stored_comment(SITE, "c-1"),
            stored_comment(SITE, "c-2"),
            stored_comment(SITE, TRICKY_ID, text="'; DROP TABLE comments; --"),
            stored_comment(OTHER_SITE, "t-1"),
        ]
    )
    yield store
    await store.close()


@pytest.fixture
async def client(sql_store: SqlReviewStore) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app_over(sql_store))) as c:
        yield c


def test_the_route_list_is_taken_from_the_router(client: Client) -> None:
    routes = _api_routes(client.app)
    assert ("POST", "/api/v1/items/{site_id}/{comment_id}/decision") in routes
    assert len(routes) >= 10
    # every path parameter of every route has a value to fill it with
    for _, path in routes:
        assert set(re.findall(r"{(\w+)}", path)) <= set(PATH_PARAMS), path


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        bearer("x" * 5_000),
        bearer(f"{ROOT} {ROOT}"),
        bearer(ROOT[:-1]),
        {"Authorization": f"Token {ROOT}"},
        {"Authorization": ROOT},
    ],
    ids=range(9),
)
async def test_every_api_route_without_a_valid_token_is_a_401(
    client: Client, sql_store: SqlReviewStore, headers: dict[str, str]
) -> None:
    for method, path in _api_routes(client.app):
        response = await client.request(
            method, _fill(path), headers=headers, json={"site_id": SITE, "comment_ids": ["c-1"]}
        )
        error = await _json_error(response, 401)
        assert error["code"] == "unauthorized", (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await sql_store.get_item(SITE, "c-1")).status is ReviewStatus.PENDING


def _other_site_request(method: str, path: str) -> tuple[URL, dict[str, Any] | None]:  # noqa: PLR0911
    """The request that aims route `path` at OTHER_SITE: by path, by query or by body."""
    url = _fill(path, site_id=OTHER_SITE, comment_id="t-1")
    if "{site_id}" in path:
        body: dict[str, Any] | None = {"action": "reject"} if method == "POST" else None
        return url, {"status": "blocked"} if method == "PUT" else body
    if method == "GET":
        return url.with_query(site=OTHER_SITE), None
    if path.endswith("/claim"):
        return url, {"site_id": OTHER_SITE}
    if path.endswith("/release"):
        return url, {"site_id": OTHER_SITE, "comment_ids": ["t-1"]}
    if path.endswith("/bulk-actions"):
        return url, {"site_id": OTHER_SITE, "comment_ids": ["t-1"], "action": "reject"}
    if path.endswith("/decisions"):
        return url, {
            "decisions": [{"site_id": OTHER_SITE, "comment_id": "t-1", "action": "reject"}]
        }
    if path.endswith("/moderate"):
        return url, {"id": "t-1", "site_id": OTHER_SITE, "text": "a comment"}
    if path.endswith("/admin/policy/reload"):  # no site: admins only, so a moderator gets 403
        return url, {}
    raise AssertionError(f"{method} {path}: say how a site is named on this new route")


NO_SITE_ROUTES = {
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/me"),
    # the site is the stored action's: tests/unit/entrypoints/http/test_bulk_actions_api.py
    # covers them
    ("GET", "/api/v1/bulk-actions/{action_id}"),
    ("POST", "/api/v1/bulk-actions/{action_id}/undo"),
}


async def test_a_token_of_one_site_can_neither_read_nor_decide_another(
    client: Client, sql_store: SqlReviewStore
) -> None:
    before = await sql_store.get_item(OTHER_SITE, "t-1")
    for method, path in _api_routes(client.app):
        if (method, path) in NO_SITE_ROUTES:
            continue
        url, body = _other_site_request(method, path)
        response = await client.request(method, url, headers=bearer(ALICE), json=body)
        text = await response.text()
        if path.endswith("/decisions"):  # bulk: each item answers for itself
            assert response.status == 200, text
            [result] = (await response.json())["results"]
            assert (result["ok"], result["error"]["code"]) == (False, "forbidden_site")
            assert result["item"] is None
            continue
        error = await _json_error(response, 403)
        assert error["code"] in {"forbidden_site", "forbidden_role"}, (method, path)
        assert "t-1" not in text  # nothing of the other site's item comes back
    assert await sql_store.get_item(OTHER_SITE, "t-1") == before
    assert not [e for e in (await sql_store.audit_log(None)).items if e.site_id == OTHER_SITE]


@pytest.mark.parametrize("value", SQL_META, ids=range(len(SQL_META)))
async def test_sql_metacharacters_in_query_parameters_are_refused_or_match_nothing(
    client: Client, value: str
) -> None:
    for method, path in _api_routes(client.app):
        if method != "GET" or "{" in path:
            continue
        for name in ("site", "reason", "older_than", "cursor", "limit"):
            url = URL(path, encoded=True).with_query({name: value})
            response = await client.get(url, headers=bearer(ROOT))
            if response.status >= 400:
                await _json_error(response)
                continue
            # accepted only as a well-formed site id that no item has: an empty answer
            assert name == "site", (path, name, value)
            body = await response.json()
            assert body in (
                {"items": [], "next_cursor": None},
                {"sites": []},
                {"entries": [], "next_cursor": None},
                {"bulk_actions": [], "undo_seconds": 10.0},
                {"spot_checks": []},
            ), body


@pytest.mark.parametrize("value", SQL_META, ids=range(len(SQL_META)))
async def test_sql_metacharacters_in_path_parameters_are_refused_or_not_found(
    client: Client, sql_store: SqlReviewStore, value: str
) -> None:
    for method, path in _api_routes(client.app):
        if "{" not in path:
            continue
        for name in ("site_id", "comment_id", "author_id"):
            if f"{{{name}}}" not in path or method == "PUT":
                continue  # an author's status is stored under any id, exactly: test_author_api
            body = {"action": "reject"} if method == "POST" else None
            response = await client.request(
                method, _fill(path, **{name: value}), headers=bearer(ROOT), json=body
            )
            if response.status == 200:  # a well-formed site id that has no authors
                assert path.endswith("/authors"), (method, path, name, value)
                assert await response.json() == {"authors": [], "next_cursor": None}
                continue
            error = await _json_error(response)
            assert response.status in {400, 404}, (method, path, name, value, error)
    for comment_id in ("c-1", "c-2", TRICKY_ID):
        assert (await sql_store.get_item(SITE, comment_id)).status is ReviewStatus.PENDING


async def test_an_id_made_of_sql_metacharacters_is_found_exactly(client: Client) -> None:
    response = await client.get(_fill(PATH_PARAMS_ITEM, comment_id=TRICKY_ID), headers=bearer(ROOT))
    assert response.status == 200, await response.text()
    item = (await response.json())["item"]
    assert (item["comment_id"], item["text"]) == (TRICKY_ID, "'; DROP TABLE comments; --")
    for wildcard in ("it_s; -- 100%", "%", "_", "it's; -- 100%_%"):
        missing = await client.get(
            _fill(PATH_PARAMS_ITEM, comment_id=wildcard), headers=bearer(ROOT)
        )
        assert (await _json_error(missing, 404))["code"] == "not_found"


@pytest.mark.parametrize("value", SQL_META, ids=range(len(SQL_META)))
async def test_sql_metacharacters_in_body_fields_are_refused_or_match_nothing(
    client: Client, sql_store: SqlReviewStore, value: str
) -> None:
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/queue/claim", {"site_id": value}),
        ("/api/v1/queue/claim", {"site_id": SITE, "order": value}),
        ("/api/v1/queue/release", {"site_id": value, "comment_ids": ["c-1"]}),
        ("/api/v1/queue/release", {"site_id": SITE, "comment_ids": [value]}),
        (
            "/api/v1/decisions",
            {"decisions": [{"site_id": value, "comment_id": "c-1", "action": "approve"}]},
        ),
        (
            "/api/v1/decisions",
            {"decisions": [{"site_id": SITE, "comment_id": value, "action": "approve"}]},
        ),
        ("/api/v1/items/herald/c-1/decision", {"action": value}),
        ("/api/v1/items/herald/c-1/decision", {"action": "reject", "reason": value}),
    ]
    for path, body in bodies:
        response = await client.post(path, headers=bearer(ROOT), json=body)
        if response.status >= 400:
            await _json_error(response)
            continue
        doc = await response.json()
        if path.endswith("/release"):
            assert doc == {"released": []}
        elif path.endswith("/decisions"):
            assert [r["error"]["code"] for r in doc["results"]] == ["not_found"]
        elif path.endswith("/claim"):  # a well-formed site id no item has
            assert doc == {"items": []}
        else:
            raise AssertionError(f"{path} {body} was accepted: {doc}")
    for comment_id in ("c-1", "c-2", TRICKY_ID):
        assert (await sql_store.get_item(SITE, comment_id)).status is ReviewStatus.PENDING


DECISION = "/api/v1/items/herald/c-1/decision"
LONE_SURROGATES = [
    (DECISION, {"action": "reject", "note": "\ud800"}),
    (DECISION, {"action": "reject", "note": "ok \udfff then"}),
    (
        "/api/v1/decisions",
        {"decisions": [{"site_id": SITE, "comment_id": "\udc00", "action": "approve"}]},
    ),
    ("/api/v1/queue/release", {"site_id": SITE, "comment_ids": ["\ud83d"]}),
    ("/api/v1/queue/claim", {"\ud800": 1}),
]


@pytest.mark.parametrize(("path", "body"), LONE_SURROGATES, ids=range(len(LONE_SURROGATES)))
async def test_a_lone_surrogate_in_a_body_is_a_400_not_a_store_failure(
    client: Client, sql_store: SqlReviewStore, path: str, body: dict[str, Any]
) -> None:
    # Found by these tests: the JSON parser lets an escaped lone surrogate through, and the
    # store could not encode it: a 500.
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \\udxxx
    assert b"\\ud" in raw
    response = await client.post(path, headers=bearer(ROOT), data=raw)
    error = await _json_error(response, 400)
    assert error["code"] == "invalid_json"
    assert (await sql_store.get_item(SITE, "c-1")).status is ReviewStatus.PENDING
    assert not (await sql_store.audit_log(None)).items


@pytest.fixture
async def small_client() -> AsyncIterator[Client]:
    store = InMemoryReviewStore()
    store.add(review_item(SITE, "c-1"))
    async with TestClient(TestServer(app_over(store, client_max_size=2048))) as c:
        yield c


async def test_every_post_route_refuses_an_oversized_body_with_a_413(small_client: Client) -> None:
    posts = _json_body_routes(small_client.app)
    assert len(posts) >= 4  # claim, release, decide, decide many
    for method, path in posts:
        for body in (b"{" + b" " * 5_000 + b"}", b'{"note": "' + b"x" * 1_000_000 + b'"}'):
            response = await small_client.request(
                method,
                _fill(path),
                headers={**bearer(ROOT), "Content-Type": "application/json"},
                data=body,
            )
            error = await _json_error(response, 413)
            assert error["code"] == "body_too_large", (method, path)


MALFORMED = [
    b"",
    b"{",
    b"}",
    b"nul",
    b"\xff\xfe{}",
    b'{"action": "reject",}',
    b"{'action': 'reject'}",
    b'{"action": NaN}',
    b'{"action": Infinity}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b"1" * 5_000,
    b"[]",
    b'"a string"',
    b"null",
    b'{"action": "reject"}\x00',
    b'{"action": "reject"} {"action": "approve"}',
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_json_on_every_post_route_is_a_400(
    small_client: Client, body: bytes
) -> None:
    for method, path in _json_body_routes(small_client.app):
        response = await small_client.request(
            method,
            _fill(path),
            headers={**bearer(ROOT), "Content-Type": "application/json"},
            data=body,
        )
        if len(body) > 2048:
            assert (await _json_error(response, 413))["code"] == "body_too_large"
            continue
        error = await _json_error(response, 400)
        assert error["code"] == "invalid_json", (method, path, body[:40])
