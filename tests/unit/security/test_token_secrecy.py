"""Tokens are compared against every entry whatever matches, and neither a token nor its hash
reaches a log record or a response body."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from service.adapters.token_file import TokenRegistry
from service.domain.access import Identity, Role
from service.entrypoints.http.app import app_runner
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, BOB, ROOT, app_over, bearer

TOKENS = [f"token-number-{n}-of-the-registry" for n in range(8)]


def _registry() -> TokenRegistry:
    return TokenRegistry(
        (Identity(f"user-{n}", Role.MODERATOR, frozenset({"herald"})), _hex(token))
        for n, token in enumerate(TOKENS)
    )


def _hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(
    "bearer_token", [TOKENS[0], TOKENS[3], TOKENS[-1], "unknown", TOKENS[0] + "x"]
)
def test_authenticate_compares_against_every_entry_wherever_the_match_is(
    monkeypatch: pytest.MonkeyPatch, bearer_token: str
) -> None:
    compared: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return compare(a, b)

    registry = _registry()
    monkeypatch.setattr("service.adapters.token_file.hmac.compare_digest", counting)
    found = registry.authenticate(bearer_token)
    assert sorted(compared) == sorted(bytes.fromhex(_hex(t)) for t in TOKENS)
    expected = TOKENS.index(bearer_token) if bearer_token in TOKENS else None
    assert (found and found.id) == (None if expected is None else f"user-{expected}")


@pytest.fixture
async def served() -> AsyncIterator[str]:
    """The app served as `moderation serve` serves it (`app_runner`), on a free port."""
    store = InMemoryReviewStore()
    store.add(review_item("herald", "c-1"), review_item("tech-blog", "t-1"))
    runner = app_runner(app_over(store))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        [address] = runner.addresses
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        await runner.cleanup()


SECRETS = [ALICE, BOB, ROOT, "a-wrong-token-that-is-guessed"]


def _secret_forms(token: str) -> list[str]:
    digest = hashlib.sha256(token.encode()).digest()
    return [token, digest.hex(), digest.hex().upper(), repr(digest)[2:-1]]


async def test_no_token_or_hash_reaches_a_log_record_or_a_response_body(
    served: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    requests = [
        ("GET", "/api/v1/me", bearer(ALICE)),  # success
        ("GET", "/api/v1/queue?site=tech-blog", bearer(ALICE)),  # 403
        ("GET", "/api/v1/items/herald/nope", bearer(BOB)),  # 404
        ("GET", "/api/v1/audit", bearer(BOB)),  # 403 role
        ("POST", "/api/v1/queue/claim", bearer(ROOT)),  # 400 no body
        ("GET", "/api/v1/me", bearer(SECRETS[3])),  # 401 unknown
        ("GET", "/api/v1/me", {"Authorization": f"Basic {ROOT}"}),  # 401 wrong scheme
        ("GET", "/api/v1/me", {"Authorization": ALICE}),  # 401 no scheme
        ("GET", f"/api/v1/me?token={ROOT}", bearer(SECRETS[3])),  # 401, token in the query
        ("GET", f"/api/v1/no-such/{ALICE}", bearer(ALICE)),  # 404 route
    ]
    async with aiohttp.ClientSession(served) as session:
        for method, path, headers in requests:
            async with session.request(method, path, headers=headers) as response:
                assert response.status < 500
                bodies.append(await response.text())
        with pytest.MonkeyPatch.context() as patch:  # a failure is logged: still no token
            patch.setattr(InMemoryReviewStore, "queue_stats", _explode)
            async with session.get("/api/v1/stats", headers=bearer(ROOT)) as response:
                assert response.status == 500
                bodies.append(await response.text())
    assert any(r.levelno >= logging.ERROR for r in caplog.records)  # the log was captured
    logged = [" ".join([r.getMessage(), str(r.__dict__), caplog.text]) for r in caplog.records]
    for secret in SECRETS:
        for form in _secret_forms(secret):
            assert not [line for line in logged if form in line], form
            assert not [b for b in bodies if form in b], form


async def _explode(*_: object, **__: object) -> None:
    raise RuntimeError("boom")


async def test_the_served_app_has_no_access_log_and_its_own_request_line_limit(
    served: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the test above: `app_runner` passed its options in a way aiohttp refused, so it
    # fell back to its defaults (access log on, 8 KiB request line) with only a warning.
    caplog.set_level(logging.DEBUG)
    long_cursor = "A" * 10_000  # over aiohttp's default line limit, under the API's
    async with (
        aiohttp.ClientSession(served) as session,
        session.get(f"/api/v1/queue?cursor={long_cursor}", headers=bearer(ROOT)) as response,
    ):
        assert response.status == 400
        assert response.content_type == "application/json"  # the app answered, not the parser
        assert (await response.json())["error"]["code"] == "invalid_request"
    assert not [r for r in caplog.records if r.name.startswith("aiohttp.")]
