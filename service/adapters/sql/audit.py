"""`AuditLog` on SQL."""

from __future__ import annotations

from datetime import datetime

from service.adapters.sql.base import SqlBase
from service.adapters.sql.rows import (
    decode_cursor,
    encode_cursor,
    from_ms_required,
    in_clause,
)
from service.domain.review import (
    AuditEntry,
    Page,
)


class SqlAuditLog(SqlBase):
    async def add_audit(
        self,
        actor: str,
        action: str,
        site_id: str | None,
        comment_id: str | None,
        detail: str,
        *,
        now: datetime,
    ) -> None:
        def add() -> None:
            with self._db.transaction(write=True) as tx:
                self._audit(
                    tx,
                    actor=actor,
                    action=action,
                    site_id=site_id,
                    comment_id=comment_id,
                    detail=detail,
                    now=now,
                )

        await self._run(add)

    async def audit_log(
        self, sites: frozenset[str] | None, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        before = decode_cursor(cursor, (int,))[0] if cursor else None

        def read() -> Page[AuditEntry]:
            site_sql, params = in_clause("site_id", sites)
            sql = (
                "SELECT id, at_ms, actor, action, site_id, comment_id, detail FROM audit "
                f"WHERE 1 = 1{site_sql}"
            )
            if before is not None:
                sql += " AND id < ?"
                params.append(before)
            sql += " ORDER BY id DESC LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            entries = tuple(
                AuditEntry(int(r[0]), from_ms_required(r[1]), r[2], r[3], r[4], r[5], r[6])
                for r in rows[:limit]
            )
            more = len(rows) > limit
            return Page(entries, encode_cursor(entries[-1].id) if more and entries else None)

        return await self._run(read)
