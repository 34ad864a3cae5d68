"""One test suite, run against SQLite, PostgreSQL and the in-memory fake the HTTP tests use
(`any_store`); the migration tests only against the two databases (`sql_store`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.adapters.sql.migrations import MIGRATIONS
from service.adapters.sql.store import SqlReviewStore
from service.domain.errors import AlreadyDecided, ClaimedByOther, InvalidCursor, ReviewNotFound
from service.domain.model import Action, Language, ModeratorReason, Reason, ReasonCode, Scores
from service.domain.review import (
    ActivityQuery,
    ModeratorDecision,
    OutboxDraft,
    QueueOrder,
    ReviewStatus,
    StoredComment,
)
from service.usecases.ports import ReviewStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


@pytest.fixture
def store(any_store: ReviewStore) -> ReviewStore:
    return any_store


@pytest.fixture
async def sql_store(database_url: str) -> AsyncIterator[SqlReviewStore]:
    s = SqlReviewStore.from_url(database_url)
    await s.migrate()
    yield s
    await s.close()


HOSTILE = "<img src=x onerror=\"alert('x')\">'; DROP TABLE comments; -- \u202e\U0001f600"


def stored(
    cid: str,
    *,
    site: str = "herald",
    action: Action = Action.REVIEW,
    at: datetime = T0,
    spam: float = 0.6,
    abuse: float = 0.1,
    author: str | None = "ann",
    text: str | None = None,
    code: ReasonCode = ReasonCode.SPAM_UNCERTAIN,
) -> StoredComment:
    return StoredComment(
        site_id=site,
        comment_id=cid,
        text=text if text is not None else f"text of {cid}",
        author_id=author,
        author_name="Ann" if author else None,
        thread_id="article-1",
        created_at=at - timedelta(seconds=5),
        scores=Scores(spam=spam, abuse=abuse),
        reasons=(Reason(code, f"{code} detail"),),
        action=action,
        model_version="m-1",
        policy_version="p-1",
        decided_at=at,
        event_json=json.dumps({"id": cid, "site_id": site, "x-extra": 1}),
    )


def verdict(
    cid: str, moderator: str = "alice", action: Action = Action.REJECT, site: str = "herald"
) -> ModeratorDecision:
    return ModeratorDecision(site, cid, action, ModeratorReason.SPAM, "looks like spam", moderator)


def draft(cid: str, n: int = 0) -> OutboxDraft:
    return OutboxDraft(f"evt-{cid}-{n}", "comment-decisions", f"herald:{cid}".encode(), b"{}")


async def test_migrations_apply_once_and_can_run_again(sql_store: SqlReviewStore) -> None:
    await sql_store.migrate()

    assert await sql_store.schema_version() == MIGRATIONS[-1][0]


async def test_instances_starting_together_migrate_a_fresh_database_once(
    database_url: str,
) -> None:
    stores = [SqlReviewStore.from_url(database_url) for _ in range(4)]
    try:
        for _ in range(3):  # the race is in the first statement: give it several chances
            await asyncio.gather(*(s.migrate() for s in stores))
        versions = {await s.schema_version() for s in stores}
    finally:
        for s in stores:
            await s.close()

    assert versions == {MIGRATIONS[-1][0]}


async def test_only_review_decisions_enter_the_queue(store: ReviewStore) -> None:
    await store.record_decisions(
        [stored("a"), stored("b", action=Action.APPROVE), stored("c", action=Action.REJECT)]
    )

    page = await store.list_queue(None, now=T0)
    assert [i.comment_id for i in page.items] == ["a"]
    item = page.items[0]
    assert item.status is ReviewStatus.PENDING
    assert item.scores == Scores(spam=0.6, abuse=0.1)
    assert item.reasons == (Reason(ReasonCode.SPAM_UNCERTAIN, "spam_uncertain detail"),)
    assert item.queued_at == T0
    assert item.claimed_by is None
    with pytest.raises(ReviewNotFound):
        await store.get_item("herald", "b")


async def test_recording_is_idempotent_and_never_undoes_a_moderator(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b")])
    await store.decide(verdict("a"), draft("a"), now=T0 + timedelta(minutes=1))

    # a replayed batch, even with different scores, changes nothing
    await store.record_decisions([stored("a", spam=0.99), stored("b", spam=0.99)])

    assert [i.comment_id for i in (await store.list_queue(None, now=T0)).items] == ["b"]
    assert (await store.get_item("herald", "a")).status is ReviewStatus.DECIDED
    assert (await store.get_item("herald", "b")).scores.spam == 0.6


async def test_sub_scores_and_the_language_are_kept_with_the_decision(
    store: ReviewStore,
) -> None:
    sub = Scores(spam=0.1, abuse=0.7, severe_toxicity=0.05, threat=0.91, profanity=0.0)
    french = Language("fr", detected=True, confidence=0.99)
    await store.record_decisions(
        [
            replace(stored("a"), scores=sub, language=french),
            replace(stored("b", action=Action.APPROVE), language=Language("en", detected=False)),
            stored("c"),  # a model without sub-scores, a comment without a language
        ]
    )

    item = await store.get_item("herald", "a")
    assert item.scores == sub  # None stays None: insult and identity_attack were not given
    assert item.language == Language("fr", detected=True)  # the confidence is not kept
    approved = await store.auto_decision("herald", "b")
    assert approved is not None
    assert approved.decision.language == Language("en", detected=False)
    queued = await store.auto_decision("herald", "a")
    assert queued is not None
    assert (queued.decision.scores, queued.decision.language) == (sub, item.language)
    plain = await store.get_item("herald", "c")
    assert (plain.scores, plain.language) == (Scores(spam=0.6, abuse=0.1), None)


async def test_hostile_text_is_stored_and_returned_unchanged(store: ReviewStore) -> None:
    await store.record_decisions([stored("a", text=HOSTILE), stored("nul", text="a\x00b")])

    assert (await store.get_item("herald", "a")).text == HOSTILE
    assert (await store.get_item("herald", "nul")).text == "a\ufffdb"


async def test_queue_filters_by_site_reason_and_age(store: ReviewStore) -> None:
    await store.record_decisions(
        [
            stored("old", at=T0),
            stored("new", at=T0 + timedelta(hours=1)),
            stored("abusive", at=T0, code=ReasonCode.ABUSE_UNCERTAIN),
            stored("other-site", site="tech-blog", at=T0),
        ]
    )
    now = T0 + timedelta(hours=1, minutes=30)

    async def ids(**filters: object) -> list[str]:
        page = await store.list_queue(now=now, **filters)  # type: ignore[arg-type]
        return [i.comment_id for i in page.items]

    assert await ids(sites=frozenset({"herald"})) == ["abusive", "old", "new"]
    assert await ids(sites=None) == ["abusive", "old", "other-site", "new"]
    assert await ids(sites=frozenset()) == []
    assert await ids(sites=None, reason="abuse_uncertain") == ["abusive"]
    assert await ids(sites=None, older_than=timedelta(hours=1)) == ["abusive", "old", "other-site"]
    # SQL and LIKE metacharacters are only data
    assert await ids(sites=frozenset({"herald' OR '1'='1"})) == []
    assert await ids(sites=None, reason="%") == []
    assert await ids(sites=None, reason="_pam_uncertain") == []


async def test_cursor_pagination_visits_every_item_once(store: ReviewStore) -> None:
    await store.record_decisions(
        [stored(f"c{n:02d}", at=T0 + timedelta(seconds=n // 3)) for n in range(23)]
    )

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list_queue(None, now=T0, cursor=cursor, limit=5)
        seen.extend(i.comment_id for i in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"c{n:02d}" for n in range(23)]
    assert pages == 5


@pytest.mark.parametrize("cursor", ["garbage!", "W10", "WyJhIiwgMV0"])
async def test_a_cursor_the_api_did_not_make_is_refused(store: ReviewStore, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await store.list_queue(None, now=T0, cursor=cursor)


async def test_claims_hand_items_out_oldest_first_without_overlap(store: ReviewStore) -> None:
    await store.record_decisions([stored(f"c{n}", at=T0 + timedelta(seconds=n)) for n in range(5)])

    alice = await store.claim("herald", "alice", 2, order=QueueOrder.OLDEST, lease=LEASE, now=T0)
    bob = await store.claim("herald", "bob", 10, order=QueueOrder.OLDEST, lease=LEASE, now=T0)

    assert [i.comment_id for i in alice] == ["c0", "c1"]
    assert [i.comment_id for i in bob] == ["c2", "c3", "c4"]
    assert {i.claimed_by for i in alice} == {"alice"}
    assert alice[0].claim_expires_at == T0 + LEASE
    assert (
        await store.claim("herald", "carol", 5, order=QueueOrder.OLDEST, lease=LEASE, now=T0) == []
    )


async def test_claims_by_risk_take_the_highest_score_first(store: ReviewStore) -> None:
    await store.record_decisions(
        [stored("low", spam=0.55), stored("high", abuse=0.85), stored("mid", spam=0.7)]
    )

    claimed = await store.claim("herald", "alice", 3, order=QueueOrder.RISK, lease=LEASE, now=T0)

    assert [i.comment_id for i in claimed] == ["high", "mid", "low"]


async def test_an_expired_lease_returns_items_to_the_queue(store: ReviewStore) -> None:
    await store.record_decisions([stored("a")])
    await store.claim("herald", "alice", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)

    before_expiry = T0 + LEASE - timedelta(seconds=1)
    assert (
        await store.claim(
            "herald", "bob", 1, order=QueueOrder.OLDEST, lease=LEASE, now=before_expiry
        )
        == []
    )
    again = await store.claim(
        "herald", "bob", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0 + LEASE
    )
    assert [(i.comment_id, i.claimed_by) for i in again] == [("a", "bob")]


async def test_release_gives_back_only_the_moderators_own_claims(store: ReviewStore) -> None:
    await store.record_decisions([stored("a"), stored("b")])
    await store.claim("herald", "alice", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)
    await store.claim("herald", "bob", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)

    assert await store.release("herald", ["a", "b", "nope"], "alice", now=T0) == ["a"]
    assert (await store.get_item("herald", "a")).claimed_by is None
    assert (await store.get_item("herald", "b")).claimed_by == "bob"


async def test_a_decision_writes_item_outbox_and_audit_together(store: ReviewStore) -> None:
    await store.record_decisions([stored("a")])
    when = T0 + timedelta(minutes=3)

    item = await store.decide(verdict("a"), draft("a"), now=when)

    assert item.status is ReviewStatus.DECIDED
    assert (item.decision, item.decided_by, item.decided_at) == (
        Action.REJECT,
        "moderator:alice",
        when,
    )
    assert (item.decision_reason, item.note) == (ModeratorReason.SPAM, "looks like spam")
    [record] = await store.outbox_pending(10)
    assert (record.event_id, record.topic, record.key) == (
        "evt-a-0",
        "comment-decisions",
        b"herald:a",
    )
    audit = (await store.audit_log(None)).items
    assert [(e.actor, e.action, e.comment_id) for e in audit] == [
        ("moderator:alice", "decide", "a")
    ]
    assert (await store.list_queue(None, now=when)).items == ()


async def test_a_second_decision_is_refused_and_writes_nothing(store: ReviewStore) -> None:
    await store.record_decisions([stored("a")])
    await store.decide(verdict("a", "alice"), draft("a"), now=T0)

    with pytest.raises(AlreadyDecided) as caught:
        await store.decide(verdict("a", "bob", Action.APPROVE), draft("a", 1), now=T0)

    assert caught.value.decided_by == "moderator:alice"
    assert len(await store.outbox_pending(10)) == 1
    assert (await store.get_item("herald", "a")).decision is Action.REJECT


async def test_deciding_an_item_another_moderator_holds_is_refused(store: ReviewStore) -> None:
    await store.record_decisions([stored("a")])
    await store.claim("herald", "alice", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)

    with pytest.raises(ClaimedByOther):
        await store.decide(verdict("a", "bob"), draft("a"), now=T0 + timedelta(minutes=1))
    # once alice's lease has run out, bob may decide
    item = await store.decide(verdict("a", "bob"), draft("a"), now=T0 + LEASE)
    assert item.decided_by == "moderator:bob"


async def test_deciding_unknown_or_unqueued_comments_is_not_found(store: ReviewStore) -> None:
    await store.record_decisions([stored("approved", action=Action.APPROVE)])

    for cid in ("missing", "approved"):
        with pytest.raises(ReviewNotFound):
            await store.decide(verdict(cid), draft(cid), now=T0)
    assert await store.outbox_pending(10) == []


async def test_author_history_lists_every_decision_newest_first(store: ReviewStore) -> None:
    await store.record_decisions(
        [
            stored("first", action=Action.APPROVE, at=T0),
            stored("second", action=Action.REJECT, at=T0 + timedelta(minutes=1)),
            stored("third", at=T0 + timedelta(minutes=2)),
            stored("someone-else", author="bob", at=T0),
        ]
    )
    await store.decide(
        verdict("third", action=Action.APPROVE), draft("third"), now=T0 + timedelta(minutes=5)
    )

    history = await store.author_history("herald", "ann")

    assert [(h.comment_id, h.action, h.decided_by) for h in history] == [
        ("third", Action.APPROVE, "moderator:alice"),
        ("second", Action.REJECT, "auto"),
        ("first", Action.APPROVE, "auto"),
    ]
    assert [h.comment_id for h in await store.author_history("herald", "ann", limit=1)] == ["third"]
    older = await store.author_history("herald", "ann", before=T0 + timedelta(minutes=1))
    assert [h.comment_id for h in older] == ["first"]


async def test_queue_stats_count_depth_claims_and_oldest(store: ReviewStore) -> None:
    await store.record_decisions(
        [
            stored("a", at=T0),
            stored("b", at=T0 + timedelta(minutes=5)),
            stored("c", site="tech-blog", at=T0 + timedelta(minutes=9)),
        ]
    )
    await store.claim("herald", "alice", 1, order=QueueOrder.OLDEST, lease=LEASE, now=T0)

    stats = await store.queue_stats(None)

    assert [(s.site_id, s.depth, s.claimed, s.oldest_queued_at) for s in stats] == [
        ("herald", 2, 1, T0),
        ("tech-blog", 1, 0, T0 + timedelta(minutes=9)),
    ]
    assert [s.site_id for s in await store.queue_stats(frozenset({"tech-blog"}))] == ["tech-blog"]


async def test_outbox_records_leave_the_pending_list_once_sent(store: ReviewStore) -> None:
    await store.record_decisions([stored(c) for c in "abc"])
    for c in "abc":
        await store.decide(verdict(c), draft(c), now=T0)

    pending = await store.outbox_pending(10)
    assert [r.event_id for r in pending] == ["evt-a-0", "evt-b-0", "evt-c-0"]
    assert await store.outbox_backlog() == 3
    await store.outbox_mark_sent([pending[0].id, pending[2].id], now=T0)

    assert [r.event_id for r in await store.outbox_pending(10)] == ["evt-b-0"]
    assert await store.outbox_backlog() == 1


async def test_audit_log_pages_newest_first_and_filters_by_site(store: ReviewStore) -> None:
    for n in range(7):
        await store.add_audit(
            "admin:root",
            "note",
            "herald" if n % 2 else "tech-blog",
            None,
            f"entry {n}",
            now=T0 + timedelta(seconds=n),
        )

    first = await store.audit_log(None, limit=4)
    assert [e.detail for e in first.items] == ["entry 6", "entry 5", "entry 4", "entry 3"]
    rest = await store.audit_log(None, cursor=first.next_cursor, limit=4)
    assert [e.detail for e in rest.items] == ["entry 2", "entry 1", "entry 0"]
    assert rest.next_cursor is None
    herald = await store.audit_log(frozenset({"herald"}))
    assert [e.detail for e in herald.items] == ["entry 5", "entry 3", "entry 1"]


async def test_activity_reports_authors_and_texts_without_the_batch_itself(
    store: ReviewStore,
) -> None:
    def comment(cid: str, author: str, minutes: int, digest: str = "h1") -> StoredComment:
        return replace(
            stored(cid, author=author, at=T0 + timedelta(minutes=minutes)),
            text_hash=digest,
            campaign_author=f"author:{author}",
        )

    await store.record_decisions(
        [
            comment("a1", "ann", 0),
            comment("a2", "ann", 9),
            comment("b1", "bob", 9),
            comment("c1", "cat", 9, digest="h2"),
            comment("replayed", "ann", 10),  # stored already: part of the batch being replayed
        ]
    )

    activity = await store.activity(
        ActivityQuery(
            authors=(("herald", "ann"), ("herald", "nobody")),
            hashes=("h1",),
            exclude=(("herald", "replayed"),),
            flood_since=T0 + timedelta(minutes=5),
            campaign_since=T0 + timedelta(minutes=1),
        )
    )

    assert activity.prior == {("herald", "ann"): 2}
    assert activity.recent == {("herald", "ann"): (T0 + timedelta(minutes=9),)}
    assert sorted(activity.texts["h1"]) == [
        ("author:ann", T0 + timedelta(minutes=9)),
        ("author:bob", T0 + timedelta(minutes=9)),
    ]
    assert "h2" not in activity.texts
