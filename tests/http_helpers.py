"""Shared set-up for tests of the HTTP layer: known tokens, the app over a fake store."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from aiohttp import web

from service.adapters.token_file import TokenRegistry
from service.domain.access import Identity, Role
from service.domain.model import Action, Reason, ReasonCode, Scores
from service.domain.review import StoredComment
from service.entrypoints.http.app import build_app
from service.usecases.ports import Clock, ReviewStore
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock

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
    store: ReviewStore, clock: Clock | None = None, *, client_max_size: int = 1024 * 1024
) -> web.Application:
    service = ReviewService(
        store,
        clock or FixedClock(),
        decisions_topic=DECISIONS_TOPIC,
        claim_lease=timedelta(seconds=600),
    )
    return build_app(service, registry(), client_max_size=client_max_size)


def stored_comment(
    site_id: str,
    comment_id: str,
    *,
    text: str = "a comment",
    author_id: str | None = "a-1",
    author_name: str | None = "Ann",
    decided_at: datetime | None = None,
    action: Action = Action.REVIEW,
) -> StoredComment:
    """A comment as the pipeline hands it to the review store (`review`: it joins the queue)."""
    at = decided_at or FixedClock().moment - timedelta(hours=1)
    return StoredComment(
        site_id=site_id,
        comment_id=comment_id,
        text=text,
        author_id=author_id,
        author_name=author_name,
        thread_id="t-1",
        created_at=at - timedelta(seconds=5),
        scores=Scores(spam=0.6, abuse=0.2),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "spam score 0.600 between thresholds"),),
        action=action,
        model_version="fake-1",
        policy_version="p-1",
        decided_at=at,
        event_json=json.dumps({"id": comment_id, "site_id": site_id, "text": text}),
    )
