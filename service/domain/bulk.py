"""Bulk actions with undo: one moderator's verdict on several items of a site, held pending
for an undo window and then applied as one store transaction, or undone (audited, never
published)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service.domain.errors import ModerationError
from service.domain.model import Action, ModeratorReason
from service.domain.review import ModeratorDecision


class BulkStatus(StrEnum):
    PENDING = "pending"  # inside the undo window (or due, not yet applied)
    APPLIED = "applied"  # its decisions and outbox rows are written
    UNDONE = "undone"  # cancelled in the window: nothing was decided or published


class ItemOutcome(StrEnum):
    """What applying a bulk action did to one of its items."""

    DECIDED = "decided"
    ALREADY_DECIDED = "already_decided"  # decided meanwhile (by this moderator, one by one)
    CLAIMED_BY_OTHER = "claimed_by_other"  # released meanwhile and claimed by another
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class BulkItem:
    comment_id: str
    outcome: ItemOutcome | None = None  # set once applied


@dataclass(frozen=True, slots=True)
class BulkAction:
    id: str
    site_id: str
    moderator_id: str
    action: Action  # approve or reject
    reason: ModeratorReason
    reason_given: bool  # False: the request named none and `reason` is the default
    note: str | None
    items: tuple[BulkItem, ...]
    status: BulkStatus
    created_at: datetime
    apply_at: datetime  # the end of the undo window
    finished_at: datetime | None  # when it was applied or undone

    @property
    def comment_ids(self) -> tuple[str, ...]:
        return tuple(i.comment_id for i in self.items)

    def verdict(self, comment_id: str) -> ModeratorDecision:
        """This action's decision on one of its items, as if the moderator had made it alone."""
        return ModeratorDecision(
            site_id=self.site_id,
            comment_id=comment_id,
            action=self.action,
            reason=self.reason,
            note=self.note,
            moderator_id=self.moderator_id,
            reason_given=self.reason_given,
        )

    def undoable(self, now: datetime) -> bool:
        return self.status is BulkStatus.PENDING and now < self.apply_at

    def due(self, now: datetime) -> bool:
        return self.status is BulkStatus.PENDING and now >= self.apply_at


class BulkActionNotFound(ModerationError):
    def __init__(self, action_id: str) -> None:
        super().__init__(f"no bulk action {action_id}")
        self.action_id = action_id


class BulkActionClosed(ModerationError):
    """The bulk action cannot be undone: applied, undone, or its window is over."""

    def __init__(self, action: BulkAction, now: datetime) -> None:
        if action.status is BulkStatus.APPLIED:
            self.code = "already_applied"
            message = f"bulk action {action.id} was already applied"
        elif action.status is BulkStatus.UNDONE:
            self.code = "already_undone"
            message = f"bulk action {action.id} was already undone"
        else:
            self.code = "undo_window_closed"
            message = f"the undo window of bulk action {action.id} closed; it is being applied"
        super().__init__(message)
        self.action_id = action.id
        self.status = action.status
        self.at = now


class InBulkAction(ModerationError):
    """An item already belongs to another bulk action still pending."""

    def __init__(self, site_id: str, comment_id: str, action_id: str) -> None:
        super().__init__(
            f"{site_id}:{comment_id} is in bulk action {action_id}, still pending; undo it first"
        )
        self.site_id = site_id
        self.comment_id = comment_id
        self.action_id = action_id
