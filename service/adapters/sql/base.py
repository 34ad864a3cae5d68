"""The SQL store's shared machinery: one dialect, a worker thread per operation (so the event
loop never waits on the database), the audit insert every role writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from service.adapters.sql import bulk
from service.adapters.sql.dialects import Dialect, Tx
from service.adapters.sql.rows import to_ms
from service.domain.authors import AuthorStatus
from service.domain.errors import (
    StoreFailed,
    StoreUnavailable,
)
from service.domain.review import AuthorKey

T = TypeVar("T")


class SqlBase:
    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self._executor = ThreadPoolExecutor(dialect.workers, thread_name_prefix="store")
        self._opened = False
        self._open_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self._db.name

    async def _run(self, operation: Callable[..., T], *args: Any) -> T:
        def guarded() -> T:
            try:
                with self._open_lock:
                    if not self._opened:
                        self._db.open()
                        self._opened = True
                return operation(*args)
            except self._db.transient as exc:
                message = f"{self._db.name}: {type(exc).__name__}: {exc}"
                if self._db.fatal(exc):
                    raise StoreFailed(message) from exc
                raise StoreUnavailable(message) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    def _audit(
        self,
        tx: Tx,
        *,
        actor: str,
        action: str,
        site_id: str | None,
        comment_id: str | None,
        detail: str,
        now: datetime,
    ) -> None:
        tx.execute(
            "INSERT INTO audit (at_ms, actor, action, site_id, comment_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (to_ms(now), actor, action, site_id, comment_id, detail),
        )

    def _audit_in(self, tx: Tx, now: datetime) -> bulk.Audit:
        def audit(actor: str, action: str, site: str, comment: str | None, detail: str) -> None:
            self._audit(
                tx,
                actor=actor,
                action=action,
                site_id=site,
                comment_id=comment,
                detail=detail,
                now=now,
            )

        return audit

    def _statuses(self, tx: Tx, authors: Sequence[AuthorKey]) -> dict[AuthorKey, AuthorStatus]:
        # an id with NUL cannot have a status (the API refuses control characters), and
        # PostgreSQL text cannot hold it: such authors are not asked about
        authors = [k for k in authors if "\x00" not in k[1]]
        if not authors:
            return {}
        pairs = ", ".join("(?, ?)" for _ in authors)
        rows = tx.fetchall(
            "SELECT site_id, author_id, status FROM author_status "
            f"WHERE (site_id, author_id) IN (VALUES {pairs})",
            [v for pair in authors for v in pair],
        )
        return {(site, author): AuthorStatus(status) for site, author, status in rows}
