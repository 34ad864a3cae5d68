"""`OutboxStore` on SQL: decision events waiting for the relay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.adapters.sql.base import SqlBase
from service.adapters.sql.rows import (
    from_ms_required,
    to_ms,
)
from service.domain.review import OutboxRecord


class SqlOutbox(SqlBase):
    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        def pending() -> list[OutboxRecord]:
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(
                    "SELECT id, event_id, topic, key, value, created_at_ms FROM outbox "
                    "WHERE sent_at_ms IS NULL ORDER BY id LIMIT ?",
                    (limit,),
                )
            return [
                OutboxRecord(
                    int(r[0]), r[1], r[2], bytes(r[3]), bytes(r[4]), from_ms_required(r[5])
                )
                for r in rows
            ]

        return await self._run(pending)

    async def outbox_backlog(self) -> int:
        def count() -> int:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL")
            return int(row[0]) if row else 0

        return await self._run(count)

    async def outbox_mark_sent(self, ids: Sequence[int], *, now: datetime) -> None:
        def mark() -> None:
            if not ids:
                return
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    f"UPDATE outbox SET sent_at_ms = ? WHERE id IN ({', '.join('?' * len(ids))})",
                    (to_ms(now), *ids),
                )

        await self._run(mark)
