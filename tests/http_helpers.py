"""Shared set-up for tests of the HTTP layer: known tokens, the app over a fake store."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from aiohttp import web

from service.auth import Identity, Role, TokenRegistry
from service.http.app import build_app
from service.ports import Clock
from service.review_service import ReviewService
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore

ALICE = "alice-token-moderator-of-herald"
BOB = "bob-token-moderator-of-herald-and-tech"
ROOT = "root-token-admin-of-everything"
DECISIONS_TOPIC = "decisions-test"


def registry() -> TokenRegistry:
    def entry(token: str, identity: Identity) -> tuple[Identity, str]:
        return identity, hashlib.sha256(token.encode()).hexdigest()

    return TokenRegistry(
        [
            entry(ALICE, Identity("alice", Role.MODERATOR, frozenset({"herald"}))),
            entry(BOB, Identity("bob", Role.MODERATOR, frozenset({"herald", "tech-blog"}))),
            entry(ROOT, Identity("root", Role.ADMIN, None)),
        ]
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_over(
    store: InMemoryReviewStore, clock: Clock | None = None, *, client_max_size: int = 1024 * 1024
) -> web.Application:
    service = ReviewService(
        store,
        clock or FixedClock(),
        decisions_topic=DECISIONS_TOPIC,
        claim_lease=timedelta(seconds=600),
    )
    return build_app(service, registry(), client_max_size=client_max_size)
