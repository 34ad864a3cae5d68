"""Migrations 10 and 11: the indexes behind the queue, the risk order and the reports hold only
rows that were ever queued (most comments are decided automatically and never are), the text
hashes' only the comments hashed for a campaign rule, and the store's queries can still use
them, on SQLite and PostgreSQL (`database_url`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from service.adapters.sql.dialects import Dialect, dialect_for
from service.adapters.sql.store import SqlReviewStore
from service.domain.model import Action
from tests.integration.service.test_review_store import stored

PARTIAL = ("comments_queue", "comments_risk", "comments_reports")
PREDICATE = dict.fromkeys(PARTIAL, "status IS NOT NULL") | {
    "comments_text": "text_hash IS NOT NULL"
}

# The shapes of the store's queue queries (`adapters/sql/queue.py`), each with the index it
# must be able to use.
QUERIES = {
    "comments_queue": "SELECT comment_id FROM comments {hint} WHERE status = 'pending' "
    "AND site_id = 'herald' ORDER BY queued_at_ms, site_id, comment_id",
    "comments_risk": "SELECT comment_id FROM comments {hint} WHERE site_id = 'herald' "
    "AND status = 'pending' ORDER BY risk DESC",
    "comments_reports": "SELECT comment_id FROM comments {hint} WHERE site_id = 'herald' "
    "AND status IN ('pending', 'decided') ORDER BY report_weight DESC",
    # the campaign rule's history (`adapters/sql/decision_log.py`)
    "comments_text": "SELECT comment_id FROM comments {hint} WHERE text_hash IN ('h-held', 'h-x') "
    "AND auto_decided_at_ms >= 0",
}


@pytest.fixture
def db(database_url: str) -> Iterator[Dialect]:
    dialect = dialect_for(database_url)
    dialect.open()
    try:
        yield dialect
    finally:
        dialect.close()


async def test_the_queue_indexes_skip_comments_that_were_never_queued(
    store: SqlReviewStore, db: Dialect
) -> None:
    await store.record_decisions(
        [stored(f"auto-{i}", action=Action.APPROVE) for i in range(40)]
        + [stored(f"held-{i}") for i in range(3)]
    )

    with db.transaction(write=False) as tx:
        if db.name == "sqlite":
            rows = tx.fetchall(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'comments'"
            )
        else:
            rows = tx.fetchall(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'comments'"
            )
        definitions = {name: sql or "" for name, sql in rows}
        queued = tx.fetchall("SELECT COUNT(*) FROM comments WHERE status IS NOT NULL")
    for name, predicate in PREDICATE.items():
        assert "WHERE" in definitions[name]
        assert predicate in definitions[name].replace("(", "").replace(")", "")
    assert queued == [(3,)]  # the auto-approved 40 are in none of the queue's
    # the author index serves the page and the flood rule, which read every comment
    assert "WHERE" not in definitions["comments_author"]


@pytest.mark.parametrize("index", PREDICATE)
async def test_each_queue_query_can_still_use_its_index(
    store: SqlReviewStore, db: Dialect, index: str
) -> None:
    await store.record_decisions(
        [stored(f"auto-{i}", action=Action.APPROVE) for i in range(40)]
        + [replace(stored("held"), text_hash="h-held")]
    )
    with db.transaction(write=True) as tx:
        if db.name == "sqlite":
            # INDEXED BY fails ("no query solution") unless the query implies the index's WHERE
            rows = tx.fetchall(QUERIES[index].format(hint=f"INDEXED BY {index}"))
            assert rows == [("held",)]
        else:
            # with every other way to read the table taken away (a fresh database per test),
            # the planner must take this index, which it can only if the query implies its WHERE
            for setting in ("enable_seqscan", "enable_bitmapscan"):
                tx.execute(f"SET LOCAL {setting} = off")
            for other in [*sorted(set(PREDICATE) - {index}), "comments_author"]:
                tx.execute(f"DROP INDEX {other}")
            tx.execute("ALTER TABLE comments DROP CONSTRAINT comments_pkey")
            query = QUERIES[index].format(hint="")
            plan = " ".join(str(row[0]) for row in tx.fetchall(f"EXPLAIN {query}"))
            assert f"using {index} on comments" in plan, plan  # an index scan, any direction
            assert tx.fetchall(query) == [("held",)]
