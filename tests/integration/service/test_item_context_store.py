"""An item's context in the store: the comment it answers, its article, its author's counts.
One suite, run on SQLite, PostgreSQL and the in-memory fake the HTTP tests use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.domain.feedback import Feedback, FeedbackKind
from service.domain.model import Action, ModeratorReason, Reason, ReasonCode, Scores
from service.domain.review import AuthorCounts, ModeratorDecision, OutboxDraft, StoredComment
from service.usecases.ports import ReviewStore
from tests.fakes_store import InMemoryReviewStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HOSTILE_TITLE = "<img src=x onerror=\"alert('t')\"> Council budget \u202e"
URL = "https://herald.example/2026/11/council-budget?utm=x#comments"


@pytest.fixture
def store(any_store: ReviewStore) -> ReviewStore:
    return any_store


def stored(
    cid: str,
    *,
    action: Action = Action.REVIEW,
    author: str | None = "ann",
    site: str = "herald",
    minutes: int = 0,
    parent_id: str | None = None,
    thread_url: str | None = None,
    thread_title: str | None = None,
) -> StoredComment:
    return StoredComment(
        site_id=site,
        comment_id=cid,
        text=f"text of {cid}",
        author_id=author,
        author_name=author.title() if author else None,
        thread_id="article-1",
        created_at=T0,
        scores=Scores(spam=0.6, abuse=0.1),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "between"),),
        action=action,
        model_version="m-1",
        policy_version="p-1",
        decided_at=T0 + timedelta(minutes=minutes),
        event_json=json.dumps({"id": cid, "site_id": site}),
        parent_id=parent_id,
        thread_url=thread_url,
        thread_title=thread_title,
    )


async def decide(store: ReviewStore, cid: str, action: Action, reason: ModeratorReason) -> None:
    verdict = ModeratorDecision("herald", cid, action, reason, None, "alice")
    draft = OutboxDraft(f"evt-{cid}", "comment-decisions", f"herald:{cid}".encode(), b"{}")
    await store.decide(verdict, draft, now=T0 + timedelta(hours=1))


async def report(store: ReviewStore, cid: str, reader: str) -> None:
    """A reader's report: the SQL store keeps it in the learning loop's tables; the fake,
    which has no feedback, only marks the comment reported."""
    if isinstance(store, InMemoryReviewStore):
        store.reported.add(("herald", cid))
        return
    assert isinstance(store, SqlReviewStore)
    await store.apply_feedback(
        Feedback(FeedbackKind.REPORT, "herald", cid, reader, "rude", T0 + timedelta(hours=2))
    )


async def test_the_parent_and_the_article_are_stored_with_the_comment(store: ReviewStore) -> None:
    await store.record_decisions(
        [
            stored("reply", parent_id="top", thread_url=URL, thread_title=HOSTILE_TITLE),
            stored("old-style"),  # a 1.0 event: none of them
        ]
    )

    reply = await store.get_item("herald", "reply")
    old = await store.get_item("herald", "old-style")

    assert (reply.parent_id, reply.thread_url, reply.thread_title) == ("top", URL, HOSTILE_TITLE)
    assert (old.parent_id, old.thread_url, old.thread_title) == (None, None, None)


async def test_the_parent_is_any_stored_comment_with_its_latest_decision(
    store: ReviewStore,
) -> None:
    await store.record_decisions(
        [
            stored("auto-approved", action=Action.APPROVE, author="bob"),
            stored("waiting", author="cy"),
            stored("decided", author=None),
            stored("elsewhere", site="gazette"),
        ]
    )
    await decide(store, "decided", Action.REJECT, ModeratorReason.ABUSE)

    approved = await store.comment_summary("herald", "auto-approved")
    waiting = await store.comment_summary("herald", "waiting")
    decided = await store.comment_summary("herald", "decided")

    assert approved is not None
    assert waiting is not None
    assert decided is not None
    assert (approved.text, approved.author_id, approved.author_name) == (
        "text of auto-approved",
        "bob",
        "Bob",
    )
    assert (approved.action, approved.decided_by, approved.decision_reason) == (
        Action.APPROVE,
        "auto",
        None,
    )
    assert (waiting.action, waiting.decided_by) == (Action.REVIEW, "auto")
    assert (decided.action, decided.decided_by, decided.decision_reason) == (
        Action.REJECT,
        "moderator:alice",
        ModeratorReason.ABUSE,
    )
    assert decided.decided_at == T0 + timedelta(hours=1)
    assert decided.author_id is None
    # only the same site's comments; unknown ones are None
    assert await store.comment_summary("herald", "elsewhere") is None
    assert await store.comment_summary("herald", "never-seen") is None


async def test_author_counts_cover_every_comment_on_the_site_and_the_reported_ones(
    store: ReviewStore,
) -> None:
    await store.record_decisions(
        [
            stored("a1", action=Action.APPROVE),
            stored("a2", action=Action.APPROVE, minutes=1),
            stored("r1", action=Action.REJECT, minutes=2),
            stored("q-rejected", minutes=3),
            stored("q-approved", minutes=4),
            stored("q-waiting", minutes=5),
            stored("bob-1", author="bob", action=Action.REJECT),
            stored("gazette-1", site="gazette", action=Action.REJECT),
        ]
    )
    await decide(store, "q-rejected", Action.REJECT, ModeratorReason.SPAM)
    await decide(store, "q-approved", Action.APPROVE, ModeratorReason.OK)
    # two readers report one waiting comment (it counts once); one reports a rejected one
    await report(store, "q-waiting", "reader-1")
    await report(store, "q-waiting", "reader-2")
    await report(store, "r1", "reader-1")
    await report(store, "bob-1", "reader-1")

    counts = await store.author_counts("herald", "ann")

    assert counts == AuthorCounts(total=6, approved=3, rejected=2, waiting=1, reported=2)
    assert await store.author_counts("herald", "nobody") == AuthorCounts(0, 0, 0, 0, 0)
    assert await store.author_counts("gazette", "ann") == AuthorCounts(1, 0, 1, 0, 0)
