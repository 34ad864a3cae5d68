"""What a moderator can do with the review queue, written against the `ReviewStore` and
`Clock` ports. Every method takes the caller's `Identity` and checks role and site scope here,
so the HTTP views only parse, call and map errors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from service.contracts import codec
from service.domain.access import AccessDenied as AccessDenied  # noqa: PLC0414 - re-exported
from service.domain.access import Identity, Role, site_denied
from service.domain.authors import AuthorMark, AuthorStatus, NoAuthorStatus, author_audit_action
from service.domain.errors import (
    AlreadyDecided,
    ClaimedByOther,
    ModerationError,
    ReviewNotFound,
    StoreUnavailable,
)
from service.domain.model import Action, ModeratorReason
from service.domain.review import (
    AuditEntry,
    AuthorCounts,
    CommentSummary,
    HistoryEntry,
    InvalidModeratorDecision,
    ModeratorDecision,
    OutboxDraft,
    Page,
    QueueOrder,
    QueueStats,
    ReviewItem,
    ReviewStatus,
    moderator_decision,
)
from service.domain.spot_check import SpotCheckEstimate, estimate
from service.usecases.bulk_actions import DEFAULT_UNDO_WINDOW, BulkActions
from service.usecases.ports import Clock, ReviewMetrics, ReviewStore


class ErrorCode(StrEnum):
    """Stable codes of a bulk decision's failed items (the same as the API's error codes)."""

    NOT_FOUND = "not_found"
    ALREADY_DECIDED = "already_decided"
    CLAIMED_BY_OTHER = "claimed_by_other"
    FORBIDDEN_SITE = "forbidden_site"
    INVALID_DECISION = "invalid_decision"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    site_id: str
    comment_id: str
    action: Action
    reason: ModeratorReason
    note: str | None = None
    reason_given: bool = True  # False: no reason in the request, `reason` is the default


@dataclass(frozen=True, slots=True)
class BulkResult:
    site_id: str
    comment_id: str
    item: ReviewItem | None  # set when the decision was written
    error: ErrorCode | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Detail:
    item: ReviewItem
    history: list[HistoryEntry]
    parent: CommentSummary | None = None  # the comment it answers, when the store has it
    author_counts: AuthorCounts | None = None  # None: an anonymous comment
    author_status: AuthorMark | None = None  # the author trusted or blocked on the site


@dataclass(frozen=True, slots=True)
class AuthorChange:
    mark: AuthorMark  # in force now
    previous: AuthorMark | None  # what it replaced (the same: nothing changed)


@dataclass(frozen=True, slots=True)
class SiteStats:
    stats: QueueStats
    oldest_age_seconds: float | None


_BULK_ERRORS: tuple[tuple[type[ModerationError], ErrorCode], ...] = (
    (ReviewNotFound, ErrorCode.NOT_FOUND),
    (AlreadyDecided, ErrorCode.ALREADY_DECIDED),
    (ClaimedByOther, ErrorCode.CLAIMED_BY_OTHER),
    (AccessDenied, ErrorCode.FORBIDDEN_SITE),
    (InvalidModeratorDecision, ErrorCode.INVALID_DECISION),
    (StoreUnavailable, ErrorCode.UNAVAILABLE),
)


class ReviewService:
    def __init__(
        self,
        store: ReviewStore,
        clock: Clock,
        *,
        decisions_topic: str,
        claim_lease: timedelta = timedelta(seconds=600),
        history_limit: int = 20,
        metrics: ReviewMetrics | None = None,
        undo_window: timedelta = DEFAULT_UNDO_WINDOW,
    ) -> None:
        self._metrics = metrics
        # bulk actions held for their undo window (MODERATION_UNDO_SECONDS)
        self.bulk = BulkActions(
            store,
            clock,
            decisions_topic=decisions_topic,
            undo_window=undo_window,
            claim_lease=claim_lease,
            metrics=metrics,
        )
        self._store = store
        self._clock = clock
        self._topic = decisions_topic
        self._lease = claim_lease
        self._history_limit = history_limit

    def _scope(self, who: Identity, site_id: str | None) -> frozenset[str] | None:
        if who.role is Role.SITE:
            raise AccessDenied("forbidden_role", "a site token only submits comments")
        if site_id is None:
            return who.sites
        if not who.can_see(site_id):
            raise site_denied(site_id)
        return frozenset({site_id})

    async def queue(
        self,
        who: Identity,
        *,
        site_id: str | None = None,
        reason: str | None = None,
        older_than: timedelta | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ReviewItem]:
        return await self._store.list_queue(
            self._scope(who, site_id),
            reason=reason,
            older_than=older_than,
            now=self._clock.now(),
            cursor=cursor,
            limit=limit,
        )

    async def claim(
        self, who: Identity, site_id: str, count: int, order: QueueOrder = QueueOrder.OLDEST
    ) -> list[ReviewItem]:
        self._scope(who, site_id)
        now = self._clock.now()
        items = await self._store.claim(
            site_id, who.id, count, order=order, lease=self._lease, now=now
        )
        self._count("claim", len(items))
        for item in items:
            until = codec.rfc3339(item.claim_expires_at or now + self._lease)
            await self._store.add_audit(
                who.actor, "claim", site_id, item.comment_id, f"claimed until {until}", now=now
            )
        return items

    async def release(self, who: Identity, site_id: str, comment_ids: Sequence[str]) -> list[str]:
        self._scope(who, site_id)
        now = self._clock.now()
        released = await self._store.release(site_id, comment_ids, who.id, now=now)
        self._count("release", len(released))
        for comment_id in released:
            await self._store.add_audit(
                who.actor, "release", site_id, comment_id, "returned to the queue", now=now
            )
        return released

    async def decide(self, who: Identity, request: DecisionRequest) -> ReviewItem:
        self._scope(who, request.site_id)
        item = await self._store.get_item(request.site_id, request.comment_id)
        if item.status is ReviewStatus.DECIDED:
            raise AlreadyDecided(item.site_id, item.comment_id, item.decided_by)
        verdict = ModeratorDecision(
            site_id=request.site_id,
            comment_id=request.comment_id,
            action=request.action,
            reason=request.reason,
            note=request.note,
            moderator_id=who.id,
            reason_given=request.reason_given,
        )
        decision = moderator_decision(item, verdict)
        now = self._clock.now()
        event_id = str(uuid.uuid4())
        outbox = OutboxDraft(
            event_id=event_id,
            topic=self._topic,
            key=codec.decision_key(item.site_id, item.comment_id),
            value=codec.encode_decision(decision, event_id=event_id, decided_at=now),
        )
        decided = await self._store.decide(verdict, outbox, now=now)
        self._count(request.action.value)
        return decided

    def _count(self, action: str, count: int = 1) -> None:
        if self._metrics is not None and count:
            self._metrics.moderator_action(action, count)

    async def decide_many(
        self, who: Identity, requests: Sequence[DecisionRequest]
    ) -> list[BulkResult]:
        """Each decision on its own: one failing does not undo or stop the others."""
        results = []
        for request in requests:
            try:
                item = await self.decide(who, request)
            except ModerationError as exc:
                code = next((c for kind, c in _BULK_ERRORS if isinstance(exc, kind)), None)
                if code is None:
                    raise
                results.append(
                    BulkResult(request.site_id, request.comment_id, None, code, str(exc))
                )
            else:
                results.append(BulkResult(request.site_id, request.comment_id, item, None, None))
        return results

    async def detail(self, who: Identity, site_id: str, comment_id: str) -> Detail:
        """The item, the comment it answers (same site) and its author's history and counts."""
        self._scope(who, site_id)
        item = await self._store.get_item(site_id, comment_id)
        parent = (
            await self._store.comment_summary(site_id, item.parent_id)
            if item.parent_id is not None
            else None
        )
        if item.author_id is None:
            return Detail(item, [], parent)
        history = await self._store.author_history(
            site_id, item.author_id, limit=self._history_limit
        )
        counts = await self._store.author_counts(site_id, item.author_id)
        status = await self._store.author_status(site_id, item.author_id)
        return Detail(item, history, parent, counts, status)

    async def authors(
        self,
        who: Identity,
        site_id: str,
        *,
        status: AuthorStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuthorMark]:
        self._scope(who, site_id)
        return await self._store.author_statuses(site_id, status=status, cursor=cursor, limit=limit)

    async def author(self, who: Identity, site_id: str, author_id: str) -> AuthorMark:
        self._scope(who, site_id)
        mark = await self._store.author_status(site_id, author_id)
        if mark is None:
            raise NoAuthorStatus(site_id, author_id)
        return mark

    async def set_author(
        self,
        who: Identity,
        site_id: str,
        author_id: str,
        status: AuthorStatus,
        note: str | None = None,
    ) -> AuthorChange:
        """Trust or block an author on a site (admins and the site's moderators); the
        pipeline reads it from the author's next batch, on every instance."""
        self._scope(who, site_id)
        mark = AuthorMark(site_id, author_id, status, note, who.actor, self._clock.now())
        now, before = await self._store.set_author_status(mark)
        if now != before:
            self._count(author_audit_action(status, set_=True))
        return AuthorChange(now, before)

    async def clear_author(self, who: Identity, site_id: str, author_id: str) -> AuthorMark:
        """Lift an author's status on a site; `NoAuthorStatus` if there is none."""
        self._scope(who, site_id)
        lifted = await self._store.clear_author_status(
            site_id, author_id, actor=who.actor, now=self._clock.now()
        )
        if lifted is None:
            raise NoAuthorStatus(site_id, author_id)
        self._count(author_audit_action(lifted.status, set_=False))
        return lifted

    async def audit_log(
        self,
        who: Identity,
        *,
        site_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuditEntry]:
        if not who.is_admin:
            raise AccessDenied("forbidden_role", "the audit log is for admins")
        return await self._store.audit_log(self._scope(who, site_id), cursor=cursor, limit=limit)

    async def stats(self, who: Identity, *, site_id: str | None = None) -> list[SiteStats]:
        now = self._clock.now()
        return [
            SiteStats(s, _age(now, s.oldest_queued_at))
            for s in await self._store.queue_stats(self._scope(who, site_id))
        ]

    async def spot_checks(
        self, who: Identity, *, site_id: str | None = None
    ) -> list[SpotCheckEstimate]:
        """Per site and automatic action, how often spot checks found the machine wrong."""
        counts = await self._store.spot_check_counts(self._scope(who, site_id))
        return [estimate(c) for c in counts]


def _age(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else max(0.0, (now - since).total_seconds())
