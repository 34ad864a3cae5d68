"""Bulk actions with undo, written against the store and clock ports.

A moderator's bulk verdict is held by the store (not the browser) as a pending action for the
undo window; its items stay claimed by that moderator. Until `apply_at` it can be undone:
nothing was decided, nothing published, an audit entry says so. After it, `apply_due` (run by
every instance in the background) applies it in one store transaction: each item's decision
with its outbox record. Instances sharing the database never both apply one action."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from service.contracts import codec
from service.domain.access import AccessDenied, Identity, require_moderator_of
from service.domain.bulk import BulkAction, BulkItem, BulkStatus, ItemOutcome
from service.domain.errors import ReviewNotFound, StoreUnavailable
from service.domain.model import Action, ModeratorReason
from service.domain.review import (
    InvalidModeratorDecision,
    OutboxDraft,
    ReviewStatus,
    moderator_decision,
)
from service.usecases.ports import BulkActionStore, Clock, ReviewMetrics

log = logging.getLogger(__name__)

DEFAULT_UNDO_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class BulkRequest:
    site_id: str
    comment_ids: tuple[str, ...]
    action: Action
    reason: ModeratorReason
    note: str | None = None
    reason_given: bool = True


class BulkActions:
    def __init__(
        self,
        store: BulkActionStore,
        clock: Clock,
        *,
        decisions_topic: str,
        undo_window: timedelta,
        claim_lease: timedelta,
        metrics: ReviewMetrics | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._topic = decisions_topic
        self.undo_window = undo_window
        self._lease = claim_lease
        self._metrics = metrics

    async def create(self, who: Identity, request: BulkRequest) -> BulkAction:
        require_moderator_of(who, request.site_id)
        if request.action is Action.REVIEW:
            raise InvalidModeratorDecision("a moderator decides approve or reject, not review")
        now = self._clock.now()
        apply_at = now + self.undo_window
        action = BulkAction(
            id=uuid.uuid4().hex,
            site_id=request.site_id,
            moderator_id=who.id,
            action=request.action,
            reason=request.reason,
            reason_given=request.reason_given,
            note=request.note,
            items=tuple(BulkItem(c) for c in dict.fromkeys(request.comment_ids)),
            status=BulkStatus.PENDING,
            created_at=now,
            apply_at=apply_at,
            finished_at=None,
        )
        return await self._store.create_bulk(action, hold_until=apply_at + self._lease)

    async def get(self, who: Identity, action_id: str) -> BulkAction:
        action = await self._store.get_bulk(action_id)
        require_moderator_of(who, action.site_id)
        return action

    async def pending(self, who: Identity, site_id: str | None) -> list[BulkAction]:
        """The caller's own pending actions (a page opened again shows their undo bars)."""
        require_moderator_of(who, site_id)
        return await self._store.pending_bulk(who.id, site_id)

    async def undo(self, who: Identity, action_id: str) -> BulkAction:
        action = await self.get(who, action_id)
        if action.moderator_id != who.id and not who.is_admin:
            raise AccessDenied(
                "forbidden_role",
                "only the moderator who made a bulk action, or an admin, may undo it",
            )
        now = self._clock.now()
        undone = await self._store.undo_bulk(
            action_id, who.actor, lease_until=now + self._lease, now=now
        )
        self._count("bulk_undo")
        return undone

    async def apply_due(self, limit: int = 20) -> list[BulkAction]:
        """Apply every action whose window has closed; returns those this call applied."""
        applied = []
        for action_id in await self._store.due_bulk(self._clock.now(), limit):
            done = await self.apply(action_id)
            if done is not None:
                applied.append(done)
        return applied

    async def apply(self, action_id: str) -> BulkAction | None:
        action = await self._store.get_bulk(action_id)
        now = self._clock.now()
        if not action.due(now):
            return None
        drafts = await self._drafts(action)
        done = await self._store.apply_bulk(action_id, drafts, now=self._clock.now())
        if done is not None:
            decided = sum(i.outcome is ItemOutcome.DECIDED for i in done.items)
            self._count(done.action.value, decided)
            log.info(
                "bulk action applied",
                extra={"bulk_action": done.id, "site_id": done.site_id, "decided": decided},
            )
        return done

    async def _drafts(self, action: BulkAction) -> dict[str, OutboxDraft]:
        """The decision events, made before the transaction (which skips an item whose state
        changed meanwhile, so a draft is never published for it)."""
        drafts = {}
        now = self._clock.now()
        for comment_id in action.comment_ids:
            try:
                item = await self._store.get_item(action.site_id, comment_id)
            except ReviewNotFound:
                continue
            if item.status is not ReviewStatus.PENDING:
                continue
            verdict = action.verdict(comment_id)
            event_id = str(uuid.uuid4())
            drafts[comment_id] = OutboxDraft(
                event_id=event_id,
                topic=self._topic,
                key=codec.decision_key(item.site_id, item.comment_id),
                value=codec.encode_decision(
                    moderator_decision(item, verdict), event_id=event_id, decided_at=now
                ),
            )
        return drafts

    def _count(self, action: str, count: int = 1) -> None:
        if self._metrics is not None and count:
            self._metrics.moderator_action(action, count)


async def run_applier(
    bulk: BulkActions,
    stop: asyncio.Event,
    *,
    every_seconds: float = 0.5,
    on_applied: Callable[[], None] | None = None,
) -> None:
    """Apply due bulk actions every `every_seconds` until `stop`; the store being down is
    logged and retried at the next turn. `on_applied` (the outbox relay's `notify`) runs
    after any action was applied."""
    while not stop.is_set():
        try:
            applied = await bulk.apply_due()
        except StoreUnavailable as exc:
            log.warning("cannot apply due bulk actions, retrying", extra={"error": str(exc)})
            applied = []
        if applied and on_applied is not None:
            on_applied()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
