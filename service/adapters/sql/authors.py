"""`AuthorStatusStore` on SQL: authors trusted or blocked on a site (migration 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.adapters.sql.base import SqlBase
from service.adapters.sql.dialects import Tx
from service.adapters.sql.rows import (
    MARK_COLUMNS,
    clean_text,
    decode_cursor,
    encode_cursor,
    mark_of,
    to_ms,
)
from service.domain.authors import (
    AuthorMark,
    AuthorStatus,
    author_audit_action,
    author_audit_detail,
)
from service.domain.review import Page


class SqlAuthorStatuses(SqlBase):
    async def author_statuses(
        self,
        site_id: str,
        *,
        status: AuthorStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuthorMark]:
        after = decode_cursor(cursor, (str,))[0] if cursor else None

        def read() -> Page[AuthorMark]:
            sql = f"SELECT {MARK_COLUMNS} FROM author_status WHERE site_id = ?"
            params: list[Any] = [site_id]
            if status is not None:
                sql += " AND status = ?"
                params.append(status.value)
            if after is not None:
                sql += " AND author_id > ?"
                params.append(after)
            sql += " ORDER BY author_id LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            marks = tuple(mark_of(r) for r in rows[:limit])
            more = len(rows) > limit and marks
            return Page(marks, encode_cursor(marks[-1].author_id) if more else None)

        return await self._run(read)

    async def author_status(self, site_id: str, author_id: str) -> AuthorMark | None:
        def read() -> AuthorMark | None:
            with self._db.transaction(write=False) as tx:
                return self._mark(tx, site_id, author_id, lock=False)

        return await self._run(read)

    def _mark(self, tx: Tx, site_id: str, author_id: str, *, lock: bool) -> AuthorMark | None:
        row = tx.fetchone(
            f"SELECT {MARK_COLUMNS} FROM author_status WHERE site_id = ? AND author_id = ?"
            + (self._db.for_update if lock else ""),
            (site_id, author_id),
        )
        return None if row is None else mark_of(row)

    async def set_author_status(self, mark: AuthorMark) -> tuple[AuthorMark, AuthorMark | None]:
        note = clean_text(mark.note)

        def write() -> tuple[AuthorMark, AuthorMark | None]:
            with self._db.transaction(write=True) as tx:
                before = self._mark(tx, mark.site_id, mark.author_id, lock=True)
                if before is not None and (before.status, before.note) == (mark.status, note):
                    return before, before  # asked again: nothing changes, who and when stay
                tx.execute(
                    "INSERT INTO author_status (site_id, author_id, status, note, set_by, "
                    "set_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, author_id) DO "
                    "UPDATE SET status = excluded.status, note = excluded.note, "
                    "set_by = excluded.set_by, set_at_ms = excluded.set_at_ms",
                    (
                        mark.site_id,
                        mark.author_id,
                        mark.status.value,
                        note,
                        mark.set_by,
                        to_ms(mark.set_at),
                    ),
                )
                self._audit(
                    tx,
                    actor=mark.set_by,
                    action=author_audit_action(mark.status, set_=True),
                    site_id=mark.site_id,
                    comment_id=None,
                    detail=author_audit_detail(mark.author_id, mark.status, note, before),
                    now=mark.set_at,
                )
                after = self._mark(tx, mark.site_id, mark.author_id, lock=False)
            assert after is not None  # noqa: S101 - just written in this transaction
            return after, before

        return await self._run(write)

    async def clear_author_status(
        self, site_id: str, author_id: str, *, actor: str, now: datetime
    ) -> AuthorMark | None:
        def clear() -> AuthorMark | None:
            with self._db.transaction(write=True) as tx:
                before = self._mark(tx, site_id, author_id, lock=True)
                if before is None:
                    return None
                tx.execute(
                    "DELETE FROM author_status WHERE site_id = ? AND author_id = ?",
                    (site_id, author_id),
                )
                self._audit(
                    tx,
                    actor=actor,
                    action=author_audit_action(before.status, set_=False),
                    site_id=site_id,
                    comment_id=None,
                    detail=author_audit_detail(author_id, None, None, before),
                    now=now,
                )
            return before

        return await self._run(clear)
