"""Trusted and blocked authors in the review store: one suite, run against SQLite, PostgreSQL
and the in-memory fake the unit tests use (so the fake cannot drift from the real thing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.adapters.sql.migrations import MIGRATIONS
from service.adapters.sql.store import SqlReviewStore
from service.domain.authors import AuthorMark, AuthorStatus
from service.domain.errors import InvalidCursor
from service.domain.review import ActivityQuery
from service.usecases.ports import ReviewStore

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HOSTILE = "<img src=x onerror=\"alert('x')\">'; DROP TABLE author_status; -- \u202e\U0001f600"
BLOCKED, TRUSTED = AuthorStatus.BLOCKED, AuthorStatus.TRUSTED


@pytest.fixture
def store(any_store: ReviewStore) -> ReviewStore:
    return any_store


def mark(
    author: str,
    status: AuthorStatus = BLOCKED,
    *,
    site: str = "herald",
    note: str | None = "spams every thread",
    by: str = "moderator:alice",
    at: datetime = T0,
) -> AuthorMark:
    return AuthorMark(site, author, status, note, by, at)


def query(*keys: tuple[str, str]) -> ActivityQuery:
    return ActivityQuery((), (), (), T0, T0, statuses=keys)


async def audit_actions(store: ReviewStore) -> list[tuple[str, str, str | None, str]]:
    page = await store.audit_log(None, limit=100)
    return [(a.actor, a.action, a.site_id, a.detail) for a in reversed(page.items)]


async def test_migration_7_makes_the_table(store: ReviewStore) -> None:
    assert 7 in [version for version, _, _ in MIGRATIONS]
    if isinstance(store, SqlReviewStore):
        await store.migrate()  # again: nothing to do
        assert await store.schema_version() >= 7


async def test_a_status_is_set_read_and_audited_in_one_go(store: ReviewStore) -> None:
    now, before = await store.set_author_status(mark("u-1"))

    assert before is None
    assert now == mark("u-1")
    assert await store.author_status("herald", "u-1") == now
    assert await store.author_status("gazette", "u-1") is None  # per site
    assert await audit_actions(store) == [
        (
            "moderator:alice",
            "block_author",
            "herald",
            "author 'u-1': blocked; note: spams every thread",
        )
    ]


async def test_the_same_status_again_changes_nothing_and_keeps_who_and_when(
    store: ReviewStore,
) -> None:
    await store.set_author_status(mark("u-1"))

    now, before = await store.set_author_status(
        mark("u-1", by="admin:root", at=T0 + timedelta(hours=1))
    )

    assert now == before == mark("u-1")
    assert len(await audit_actions(store)) == 1


async def test_a_changed_status_replaces_the_old_and_says_what_it_was(store: ReviewStore) -> None:
    await store.set_author_status(mark("u-1"))
    later = mark("u-1", TRUSTED, note=None, by="admin:root", at=T0 + timedelta(hours=1))

    now, before = await store.set_author_status(later)

    assert (now, before) == (later, mark("u-1"))
    assert await store.author_status("herald", "u-1") == later
    assert (await audit_actions(store))[-1] == (
        "admin:root",
        "trust_author",
        "herald",
        "author 'u-1': trusted (was blocked, set by moderator:alice)",
    )


async def test_lifting_a_status_removes_it_once_and_audits_it(store: ReviewStore) -> None:
    await store.set_author_status(mark("u-1"))
    at = T0 + timedelta(minutes=5)

    lifted = await store.clear_author_status("herald", "u-1", actor="moderator:bob", now=at)
    again = await store.clear_author_status("herald", "u-1", actor="moderator:bob", now=at)

    assert lifted == mark("u-1")
    assert again is None
    assert await store.author_status("herald", "u-1") is None
    actions = await audit_actions(store)
    assert len(actions) == 2  # the second lift found nothing and wrote nothing
    assert actions[-1] == (
        "moderator:bob",
        "unblock_author",
        "herald",
        "author 'u-1': no longer blocked (set by moderator:alice)",
    )


async def test_the_list_pages_by_author_id_and_filters_by_status(store: ReviewStore) -> None:
    for n in range(7):
        await store.set_author_status(mark(f"u-{n}", TRUSTED if n % 3 == 0 else BLOCKED))
    await store.set_author_status(mark("u-9", site="gazette"))

    seen: list[str] = []
    cursor = None
    while True:
        page = await store.author_statuses("herald", cursor=cursor, limit=3)
        seen += [m.author_id for m in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    trusted = await store.author_statuses("herald", status=TRUSTED)

    assert seen == [f"u-{n}" for n in range(7)]
    assert [m.author_id for m in trusted.items] == ["u-0", "u-3", "u-6"]
    assert trusted.next_cursor is None
    with pytest.raises(InvalidCursor):
        await store.author_statuses("herald", cursor="bm90LWEtY3Vyc29y")


async def test_a_batch_reads_the_status_of_its_authors_only(store: ReviewStore) -> None:
    await store.set_author_status(mark("u-1"))
    await store.set_author_status(mark("u-2", TRUSTED))
    await store.set_author_status(mark("u-3", site="gazette"))

    activity = await store.activity(
        query(("herald", "u-1"), ("herald", "u-2"), ("herald", "u-3"), ("herald", "bad\x00id"))
    )

    assert activity.statuses == {("herald", "u-1"): BLOCKED, ("herald", "u-2"): TRUSTED}


async def test_hostile_author_ids_and_notes_are_kept_as_they_are(store: ReviewStore) -> None:
    await store.set_author_status(mark(HOSTILE, note=HOSTILE))

    found = await store.author_status("herald", HOSTILE)
    activity = await store.activity(query(("herald", HOSTILE)))

    assert found == mark(HOSTILE, note=HOSTILE)
    assert activity.statuses == {("herald", HOSTILE): BLOCKED}
