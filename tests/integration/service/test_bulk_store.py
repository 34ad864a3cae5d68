"""Bulk actions in the review store: one suite, run against SQLite, PostgreSQL and the
in-memory fake the unit tests use (so that the fake cannot drift from the real thing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.domain.bulk import (
    BulkAction,
    BulkActionClosed,
    BulkActionNotFound,
    BulkItem,
    BulkStatus,
    InBulkAction,
    ItemOutcome,
)
from service.domain.errors import AlreadyDecided, ClaimedByOther, ReviewNotFound
from service.domain.model import Action, ModeratorReason, Reason, ReasonCode, Scores
from service.domain.review import (
    ModeratorDecision,
    OutboxDraft,
    QueueOrder,
    ReviewStatus,
    StoredComment,
)
from service.usecases.ports import ReviewStore
from tests.conftest import fresh_postgres_database
from tests.fakes_store import InMemoryReviewStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)
LEASE = timedelta(minutes=10)


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReviewStore]:
    if request.param == "fake":
        yield InMemoryReviewStore()
        return
    if request.param == "sqlite":
        sql = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
        await sql.migrate()
        yield sql
        await sql.close()
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        sql = SqlReviewStore.from_url(url)
        await sql.migrate()
        yield sql
        await sql.close()


def stored(cid: str) -> StoredComment:
    return StoredComment(
        site_id="herald",
        comment_id=cid,
        text=f"text of {cid}",
        author_id="ann",
        author_name="Ann",
        thread_id="article-1",
        created_at=T0 - timedelta(minutes=5),
        scores=Scores(spam=0.6, abuse=0.1),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "between thresholds"),),
        action=Action.REVIEW,
        model_version="m-1",
        policy_version="p-1",
        decided_at=T0 - timedelta(minutes=5),
        event_json=json.dumps({"id": cid, "site_id": "herald"}),
    )


def pending(
    ids: list[str], *, action_id: str = "b" * 32, moderator: str = "alice", at: datetime = T0
) -> BulkAction:
    return BulkAction(
        id=action_id,
        site_id="herald",
        moderator_id=moderator,
        action=Action.APPROVE,
        reason=ModeratorReason.OK,
        reason_given=True,
        note=None,
        items=tuple(BulkItem(c) for c in ids),
        status=BulkStatus.PENDING,
        created_at=at,
        apply_at=at + WINDOW,
        finished_at=None,
    )


def drafts(ids: list[str], tag: str = "x") -> dict[str, OutboxDraft]:
    return {
        c: OutboxDraft(f"evt-{tag}-{c}", "comment-decisions", f"herald:{c}".encode(), b"{}")
        for c in ids
    }


async def _create(store: ReviewStore, ids: list[str], action_id: str = "b" * 32) -> BulkAction:
    action = pending(ids, action_id=action_id)
    return await store.create_bulk(action, hold_until=action.apply_at + LEASE)


async def _audit_actions(store: ReviewStore) -> list[str]:
    return [e.action for e in reversed((await store.audit_log(None, limit=200)).items)]


async def test_a_pending_action_holds_its_items_and_publishes_nothing(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b"), stored("c")])

    created = await _create(store, ["a", "b"])

    assert created == pending(["a", "b"])
    assert await store.get_bulk(created.id) == created
    assert await store.pending_bulk("alice", "herald") == [created]
    assert await store.pending_bulk("alice", "tech-blog") == []
    assert await store.pending_bulk("bob", None) == []
    for cid in ("a", "b"):
        item = await store.get_item("herald", cid)
        assert item.status is ReviewStatus.PENDING  # not decided, for anyone looking
        assert item.claimed_by == "alice"
        assert item.claim_expires_at == T0 + WINDOW + LEASE
    assert (await store.get_item("herald", "c")).claimed_by is None
    assert await store.outbox_pending(100) == []
    assert await _audit_actions(store) == ["bulk_create"]
    # nobody else can claim the held items meanwhile
    claimed = await store.claim(
        "herald", "bob", 10, order=QueueOrder.OLDEST, lease=LEASE, now=T0 + timedelta(seconds=5)
    )
    assert [i.comment_id for i in claimed] == ["c"]


async def test_creating_is_all_or_nothing(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b"), stored("c"), stored("d")])
    await store.claim("herald", "bob", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)  # holds a
    verdict = ModeratorDecision("herald", "d", Action.REJECT, ModeratorReason.SPAM, None, "bob")
    await store.decide(verdict, drafts(["d"], "single")["d"], now=T0)

    with pytest.raises(ClaimedByOther):
        await _create(store, ["b", "a"])
    with pytest.raises(AlreadyDecided):
        await _create(store, ["b", "d"])
    with pytest.raises(ReviewNotFound):
        await _create(store, ["b", "nope"])

    assert await store.pending_bulk("alice", None) == []
    assert (await store.get_item("herald", "b")).claimed_by is None
    with pytest.raises(BulkActionNotFound):
        await store.get_bulk("b" * 32)


async def test_an_item_is_in_one_pending_action_at_a_time(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b"), stored("c")])
    await _create(store, ["a", "b"], action_id="1" * 32)

    with pytest.raises(InBulkAction) as refused:
        await _create(store, ["c", "b"], action_id="2" * 32)

    assert (refused.value.comment_id, refused.value.action_id) == ("b", "1" * 32)
    await store.undo_bulk("1" * 32, "moderator:alice", lease_until=T0 + LEASE, now=T0)
    assert (await _create(store, ["c", "b"], action_id="2" * 32)).status is BulkStatus.PENDING


async def test_an_undone_action_is_audited_decides_nothing_and_cannot_apply(
    store: ReviewStore,
) -> None:
    await store.record_decisions([stored("a"), stored("b")])
    created = await _create(store, ["a", "b"])
    inside = T0 + WINDOW - timedelta(milliseconds=1)

    undone = await store.undo_bulk(
        created.id, "moderator:alice", lease_until=inside + LEASE, now=inside
    )

    assert (undone.status, undone.finished_at) == (BulkStatus.UNDONE, inside)
    assert await store.pending_bulk("alice", None) == []
    for cid in ("a", "b"):
        item = await store.get_item("herald", cid)
        assert (item.status, item.claimed_by) == (ReviewStatus.PENDING, "alice")
        assert item.claim_expires_at == inside + LEASE
    after = T0 + WINDOW + timedelta(seconds=1)
    assert await store.due_bulk(after, 10) == []
    assert await store.apply_bulk(created.id, drafts(["a", "b"]), now=after) is None
    with pytest.raises(BulkActionClosed) as again:
        await store.undo_bulk(created.id, "moderator:alice", lease_until=inside, now=inside)
    assert again.value.code == "already_undone"
    assert await store.outbox_pending(100) == []
    assert await _audit_actions(store) == ["bulk_create", "bulk_undo"]


async def test_undo_is_refused_once_the_window_has_closed(store: ReviewStore) -> None:
    await store.record_decisions([stored("a")])
    created = await _create(store, ["a"])
    end = T0 + WINDOW

    with pytest.raises(BulkActionClosed) as closed:
        await store.undo_bulk(created.id, "moderator:alice", lease_until=end + LEASE, now=end)

    assert closed.value.code == "undo_window_closed"
    assert (await store.get_bulk(created.id)).status is BulkStatus.PENDING


async def test_a_due_action_applies_once_in_one_go_and_undo_is_then_refused(
    store: ReviewStore,
) -> None:
    await store.record_decisions([stored("a"), stored("b"), stored("c")])
    created = await _create(store, ["c", "a", "b"])
    end = T0 + WINDOW

    assert await store.apply_bulk(created.id, drafts(["a", "b", "c"]), now=end - WINDOW) is None
    assert await store.due_bulk(end - timedelta(milliseconds=1), 10) == []
    assert await store.due_bulk(end, 10) == [created.id]
    applied = await store.apply_bulk(created.id, drafts(["a", "b", "c"]), now=end)

    assert applied is not None
    assert (applied.status, applied.finished_at) == (BulkStatus.APPLIED, end)
    assert [(i.comment_id, i.outcome) for i in applied.items] == [
        ("c", ItemOutcome.DECIDED),
        ("a", ItemOutcome.DECIDED),
        ("b", ItemOutcome.DECIDED),
    ]
    for cid in ("a", "b", "c"):
        item = await store.get_item("herald", cid)
        assert (item.status, item.decision, item.decided_by, item.decided_at) == (
            ReviewStatus.DECIDED,
            Action.APPROVE,
            "moderator:alice",
            end,
        )
    assert sorted(r.event_id for r in await store.outbox_pending(100)) == [
        "evt-x-a",
        "evt-x-b",
        "evt-x-c",
    ]
    assert await store.apply_bulk(created.id, drafts(["a", "b", "c"], "y"), now=end) is None
    assert len(await store.outbox_pending(100)) == 3
    assert await store.due_bulk(end, 10) == []
    with pytest.raises(BulkActionClosed) as late:
        await store.undo_bulk(created.id, "moderator:alice", lease_until=end, now=end)
    assert late.value.code == "already_applied"
    assert (await _audit_actions(store)).count("bulk_apply") == 1


async def test_applying_skips_items_decided_meanwhile(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b")])
    created = await _create(store, ["a", "b"])
    verdict = ModeratorDecision("herald", "a", Action.REJECT, ModeratorReason.SPAM, None, "alice")
    await store.decide(verdict, drafts(["a"], "single")["a"], now=T0 + timedelta(seconds=1))

    applied = await store.apply_bulk(created.id, drafts(["a", "b"]), now=T0 + WINDOW)

    assert applied is not None
    assert {i.comment_id: i.outcome for i in applied.items} == {
        "a": ItemOutcome.ALREADY_DECIDED,
        "b": ItemOutcome.DECIDED,
    }
    assert (await store.get_item("herald", "a")).decision is Action.REJECT
    assert sorted(r.event_id for r in await store.outbox_pending(100)) == [
        "evt-single-a",
        "evt-x-b",
    ]


async def test_two_appliers_at_once_apply_an_action_once(store: ReviewStore) -> None:
    ids = [f"c{n}" for n in range(20)]
    await store.record_decisions([stored(c) for c in ids])
    created = await _create(store, ids)

    results = await asyncio.gather(
        *(store.apply_bulk(created.id, drafts(ids, str(n)), now=T0 + WINDOW) for n in range(4))
    )

    assert sum(r is not None for r in results) == 1
    rows = await store.outbox_pending(100)
    assert len(rows) == len(ids)
    assert len({r.event_id.split("-")[1] for r in rows}) == 1  # all from the winner's drafts
