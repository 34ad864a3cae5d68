"""`BulkActionStore` on SQL (migration 9; the statements are in bulk.py): applying decides each
item as `SqlReviewQueue.decide` does, in the action's one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from service.adapters.sql import bulk
from service.adapters.sql.queue import SqlReviewQueue
from service.domain.bulk import BulkAction
from service.domain.review import OutboxDraft


class SqlBulkActions(SqlReviewQueue):
    async def create_bulk(self, action: BulkAction, *, hold_until: datetime) -> BulkAction:
        def create() -> BulkAction:
            with self._db.transaction(write=True) as tx:
                bulk.create(
                    tx,
                    action,
                    hold_until=hold_until,
                    for_update=self._db.for_update,
                    audit=self._audit_in(tx, action.created_at),
                )
                return bulk.read(tx, action.id)

        return await self._run(create)

    async def get_bulk(self, action_id: str) -> BulkAction:
        def get() -> BulkAction:
            with self._db.transaction(write=False) as tx:
                return bulk.read(tx, action_id)

        return await self._run(get)

    async def pending_bulk(self, moderator_id: str, site_id: str | None) -> list[BulkAction]:
        def pending() -> list[BulkAction]:
            with self._db.transaction(write=False) as tx:
                return bulk.pending(tx, moderator_id, site_id)

        return await self._run(pending)

    async def due_bulk(self, now: datetime, limit: int) -> list[str]:
        def due() -> list[str]:
            with self._db.transaction(write=False) as tx:
                return bulk.due(tx, now, limit)

        return await self._run(due)

    async def undo_bulk(
        self, action_id: str, actor: str, *, lease_until: datetime, now: datetime
    ) -> BulkAction:
        def undo() -> BulkAction:
            with self._db.transaction(write=True) as tx:
                return bulk.undo(
                    tx,
                    action_id,
                    actor,
                    lease_until=lease_until,
                    now=now,
                    audit=self._audit_in(tx, now),
                )

        return await self._run(undo)

    async def apply_bulk(
        self, action_id: str, drafts: Mapping[str, OutboxDraft], *, now: datetime
    ) -> BulkAction | None:
        def apply() -> BulkAction | None:
            with self._db.transaction(write=True) as tx:
                return bulk.apply(
                    tx,
                    action_id,
                    drafts,
                    now=now,
                    decide=lambda verdict, draft: self._decide_in(tx, verdict, draft, now),
                    audit=self._audit_in(tx, now),
                )

        return await self._run(apply)
