"""`ReviewStore` (and `LearningStore`) on SQL: one class made of one part per role, each in its
own module (`decision_log`, `queue`, `authors`, `bulk_store`, `learning`, `audit`, `outbox`, on
`base`'s machinery and `rows`' values); here the schema and the connection's life. Each
operation is one short transaction run in a worker thread, so the event loop never waits on
the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from service.adapters.sql.audit import SqlAuditLog
from service.adapters.sql.authors import SqlAuthorStatuses
from service.adapters.sql.bulk_store import SqlBulkActions
from service.adapters.sql.decision_log import SqlDecisionLog
from service.adapters.sql.dialects import dialect_for
from service.adapters.sql.learning import SqlLearning
from service.adapters.sql.migrations import MIGRATIONS
from service.adapters.sql.outbox import SqlOutbox
from service.adapters.sql.rows import to_ms


class SqlReviewStore(
    SqlDecisionLog, SqlAuthorStatuses, SqlBulkActions, SqlLearning, SqlAuditLog, SqlOutbox
):
    """Every role of the review store (and the learning store) on one database: SQLite or
    PostgreSQL, chosen by the URL. Each role's SQL is in its own module."""

    @classmethod
    def from_url(cls, url: str) -> SqlReviewStore:
        return cls(dialect_for(url))

    async def close(self) -> None:
        def close() -> None:
            self._db.close()
            self._opened = False

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        def ping() -> None:
            with self._db.transaction(write=False) as tx:
                tx.fetchone("SELECT 1")

        await self._run(ping)

    async def migrate(self) -> None:
        await self._run(self._migrate)

    def _migrate(self) -> None:
        with self._db.transaction(write=True) as tx:
            # under the lock: two instances creating it at once would collide in PostgreSQL's
            # catalog even with IF NOT EXISTS
            self._db.lock_migrations(tx)
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at_ms BIGINT NOT NULL)"
            )
        for version, description, statements in MIGRATIONS:
            with self._db.transaction(write=True) as tx:
                self._db.lock_migrations(tx)
                if tx.fetchone("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for statement in statements:
                    tx.execute(statement.format(autoid=self._db.autoid, blob=self._db.blob))
                tx.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at_ms) "
                    "VALUES (?, ?, ?)",
                    (version, description, to_ms(datetime.now(UTC))),
                )

    async def schema_version(self) -> int:
        def read() -> int:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone("SELECT MAX(version) FROM schema_migrations")
            return int(row[0]) if row and row[0] is not None else 0

        return await self._run(read)
