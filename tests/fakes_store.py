"""An in-memory `ReviewStore` for tests of the review service and the HTTP layer; it keeps
the labels moderators' decisions write, as the SQL store does."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from service.domain.authors import (
    AuthorMark,
    AuthorStatus,
    author_audit_action,
    author_audit_detail,
)
from service.domain.bulk import (
    BulkAction,
    BulkActionClosed,
    BulkActionNotFound,
    BulkStatus,
    InBulkAction,
    ItemOutcome,
)
from service.domain.errors import (
    AlreadyDecided,
    ClaimedByOther,
    InvalidCursor,
    ReviewNotFound,
    StoreUnavailable,
)
from service.domain.feedback import LabelledExample, overturned, reason_source, training_label
from service.domain.model import Action, Decision, Reason, ReasonCode, Scores
from service.domain.review import (
    Activity,
    ActivityQuery,
    AuditEntry,
    AuthorCounts,
    AutoDecision,
    CommentSummary,
    HistoryEntry,
    ModeratorDecision,
    OutboxDraft,
    OutboxRecord,
    Page,
    QueueOrder,
    QueueStats,
    ReviewItem,
    ReviewStatus,
    StoredComment,
)
from service.domain.spot_check import SpotCheckCounts, is_spot_check_round, verdict_publishes

Key = tuple[str, str]


def _encode_cursor(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(["fake", *parts]).encode()).decode()


def _decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidCursor(f"not a cursor: {cursor[:40]!r}") from None
    if (
        not isinstance(doc, list)
        or len(doc) != size + 1
        or doc[0] != "fake"
        or not all(isinstance(p, str) for p in doc)
    ):
        raise InvalidCursor(f"not a cursor: {cursor[:40]!r}")
    return doc[1:]


def review_item(
    site_id: str = "herald",
    comment_id: str = "c-1",
    *,
    text: str = "maybe buy this",
    author_id: str | None = "a-1",
    author_name: str | None = "Ann",
    queued_at: datetime = datetime(2026, 11, 27, 11, 0, tzinfo=UTC),
    spam: float = 0.6,
    abuse: float = 0.1,
) -> ReviewItem:
    return ReviewItem(
        site_id=site_id,
        comment_id=comment_id,
        text=text,
        author_id=author_id,
        author_name=author_name,
        thread_id="t-1",
        created_at=queued_at - timedelta(seconds=5),
        scores=Scores(spam=spam, abuse=abuse),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, f"spam score {spam:.3f} between thresholds"),),
        model_version="fake-1",
        policy_version="env-1",
        queued_at=queued_at,
        status=ReviewStatus.PENDING,
        claimed_by=None,
        claim_expires_at=None,
        decision=None,
        decided_by=None,
        decided_at=None,
        decision_reason=None,
        note=None,
    )


@dataclass
class InMemoryReviewStore:
    items: dict[Key, ReviewItem] = field(default_factory=dict)
    history: dict[Key, list[HistoryEntry]] = field(default_factory=dict)  # (site, author)
    audit: list[AuditEntry] = field(default_factory=list)
    outbox: list[OutboxRecord] = field(default_factory=list)
    decided: dict[tuple[str, str], AutoDecision] = field(default_factory=dict)
    label_rows: list[LabelledExample] = field(default_factory=list)  # every decision's, in order
    bulk: dict[str, BulkAction] = field(default_factory=dict)
    author_marks: dict[Key, AuthorMark] = field(default_factory=dict)  # (site, author)
    stored: dict[Key, StoredComment] = field(default_factory=dict)  # every recorded comment
    reported: set[Key] = field(default_factory=set)  # comments readers reported (no feedback)
    # (site, automatic action, verdict) of each verdict on a spot check, in order
    spot_labels: list[tuple[str, Action, Action]] = field(default_factory=list)
    unavailable: bool = False

    def add(self, *items: ReviewItem) -> None:
        for item in items:
            self.items[item.site_id, item.comment_id] = item

    def _enqueue(self, draft: OutboxDraft, at: datetime) -> None:
        """The draft as the next outbox record, as the SQL store's insert numbers them."""
        self.outbox.append(
            OutboxRecord(
                len(self.outbox) + 1, draft.event_id, draft.topic, draft.key, draft.value, at
            )
        )

    def _check(self) -> None:
        if self.unavailable:
            raise StoreUnavailable("the fake store is down")

    async def migrate(self) -> None:
        self._check()

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        self._check()

    async def record_decisions(self, comments: Sequence[StoredComment]) -> None:
        self._check()
        for c in map(_cleaned, comments):
            self.stored.setdefault((c.site_id, c.comment_id), c)
            self.decided.setdefault(
                (c.site_id, c.comment_id),
                AutoDecision(
                    Decision(
                        c.comment_id,
                        c.site_id,
                        c.action,
                        c.scores,
                        c.reasons,
                        c.model_version,
                        c.policy_version,
                        language=None
                        if c.language is None
                        else replace(c.language, confidence=None),  # as the SQL store keeps it
                    ),
                    c.decided_at,
                ),
            )
            queued = (c.action is Action.REVIEW and c.queued) or c.spot_check is not None
            if queued and (c.site_id, c.comment_id) not in self.items:
                self.add(
                    replace(
                        review_item(c.site_id, c.comment_id, queued_at=c.decided_at),
                        text=c.text,
                        author_id=c.author_id,
                        author_name=c.author_name,
                        scores=c.scores,
                        reasons=c.reasons + ((c.spot_check,) if c.spot_check else ()),
                        auto_action=c.action,
                        language=None
                        if c.language is None
                        else replace(c.language, confidence=None),
                        thread_id=c.thread_id,
                        parent_id=c.parent_id,
                        thread_url=c.thread_url,
                        thread_title=c.thread_title,
                    )
                )

    async def record_one(self, comment: StoredComment, outbox: OutboxDraft) -> bool:
        self._check()
        key = (comment.site_id, comment.comment_id)
        if key in self.decided:
            return False
        await self.record_decisions([comment])
        self._enqueue(outbox, comment.decided_at)
        return True

    async def auto_decision(self, site_id: str, comment_id: str) -> AutoDecision | None:
        self._check()
        return self.decided.get((site_id, comment_id))

    async def activity(self, query: ActivityQuery) -> Activity:
        """The stored comments of the batch's authors and texts, the batch's own left out,
        and the statuses of the authors asked about, as the SQL store reads them."""
        self._check()
        batch, authors, hashes = set(query.exclude), set(query.authors), set(query.hashes)
        prior: dict[tuple[str, str], int] = {}
        recent: dict[tuple[str, str], list[datetime]] = {}
        texts: dict[str, list[tuple[str, datetime]]] = {}
        for key, c in self.stored.items():
            mine = (c.site_id, c.author_id) if c.author_id is not None else None
            if mine in authors and mine is not None:
                # the SQL store counts every row, then takes the batch's own back off
                prior[mine] = prior.get(mine, 0) + (key not in batch)
                if key not in batch and c.decided_at >= query.flood_since:
                    recent.setdefault(mine, []).append(c.decided_at)
            if c.text_hash in hashes and key not in batch and c.decided_at >= query.campaign_since:
                texts.setdefault(c.text_hash, []).append((c.campaign_author or "", c.decided_at))
        marks = {k: m.status for k in query.statuses if (m := self.author_marks.get(k))}
        return Activity(
            prior=prior,
            recent={k: tuple(v) for k, v in recent.items()},
            texts={k: tuple(v) for k, v in texts.items()},
            statuses=marks,
        )

    def _pending(self, sites: frozenset[str] | None) -> list[ReviewItem]:
        return sorted(
            (
                i
                for i in self.items.values()
                if i.status is ReviewStatus.PENDING and (sites is None or i.site_id in sites)
            ),
            key=lambda i: (i.queued_at, i.site_id, i.comment_id),
        )

    async def list_queue(
        self,
        sites: frozenset[str] | None,
        *,
        reason: str | None = None,
        older_than: timedelta | None = None,
        now: datetime,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ReviewItem]:
        self._check()
        after = _decode_cursor(cursor, 3) if cursor else None
        found = [
            i
            for i in self._pending(sites)
            if (reason is None or any(r.code.value == reason for r in i.reasons))
            and (older_than is None or i.queued_at <= now - older_than)
            and (after is None or [i.queued_at.isoformat(), i.site_id, i.comment_id] > after)
        ]
        page = found[:limit]
        more = len(found) > limit
        last = page[-1] if page else None
        next_cursor = (
            _encode_cursor([last.queued_at.isoformat(), last.site_id, last.comment_id])
            if more and last
            else None
        )
        return Page(tuple(page), next_cursor)

    def _held_by_other(self, item: ReviewItem, moderator_id: str, now: datetime) -> bool:
        return (
            item.claimed_by is not None
            and item.claimed_by != moderator_id
            and item.claim_expires_at is not None
            and item.claim_expires_at > now
        )

    async def claim(
        self,
        site_id: str,
        moderator_id: str,
        count: int,
        *,
        order: QueueOrder,
        lease: timedelta,
        now: datetime,
    ) -> list[ReviewItem]:
        self._check()
        free = [
            i
            for i in self._pending(frozenset({site_id}))
            if i.claimed_by is None or i.claim_expires_at is None or i.claim_expires_at <= now
        ]
        if order is QueueOrder.RISK:
            free.sort(key=lambda i: -i.risk)
        claimed = [
            replace(i, claimed_by=moderator_id, claim_expires_at=now + lease) for i in free[:count]
        ]
        self.add(*claimed)
        return claimed

    async def release(
        self, site_id: str, comment_ids: Sequence[str], moderator_id: str, *, now: datetime
    ) -> list[str]:
        self._check()
        released = []
        for comment_id in comment_ids:
            item = self.items.get((site_id, comment_id))
            if item and item.status is ReviewStatus.PENDING and item.claimed_by == moderator_id:
                self.add(replace(item, claimed_by=None, claim_expires_at=None))
                released.append(comment_id)
        return released

    async def decide(
        self, decision: ModeratorDecision, outbox: OutboxDraft, *, now: datetime
    ) -> ReviewItem:
        self._check()
        item = await self.get_item(decision.site_id, decision.comment_id)
        if item.status is ReviewStatus.DECIDED:
            raise AlreadyDecided(item.site_id, item.comment_id, item.decided_by)
        if self._held_by_other(item, decision.moderator_id, now):
            raise ClaimedByOther(item.site_id, item.comment_id)
        decided = replace(
            item,
            status=ReviewStatus.DECIDED,
            claimed_by=None,
            claim_expires_at=None,
            decision=decision.action,
            decided_by=f"moderator:{decision.moderator_id}",
            decided_at=now,
            decision_reason=decision.reason,
            note=decision.note,
        )
        self.add(decided)
        auto = self.decided.get((item.site_id, item.comment_id))
        auto_action = auto.decision.action if auto else item.auto_action
        codes = [r.code.value for r in item.reasons]
        spot = is_spot_check_round(auto_action, codes)
        if spot:
            self.spot_labels.append((item.site_id, auto_action, decision.action))
        self.label_rows.append(
            LabelledExample(
                site_id=item.site_id,
                comment_id=item.comment_id,
                text=item.text,
                label=training_label(decision.action, decision.reason),
                auto_action=auto_action,
                final_action=decision.action,
                overturned=overturned(auto_action, decision.action),
                labelled_by=f"moderator:{decision.moderator_id}",
                labelled_at=now,
                reason_source=reason_source(decision.action, reason_given=decision.reason_given),
            )
        )
        if verdict_publishes(auto_action, codes, decision.action):
            self._enqueue(outbox, now)
        await self.add_audit(
            f"moderator:{decision.moderator_id}",
            "decide",
            item.site_id,
            item.comment_id,
            f"{decision.action.value}: {decision.reason.value}",
            now=now,
        )
        return decided

    async def labels(
        self, *, site_id: str | None = None, latest_only: bool = True
    ) -> list[LabelledExample]:
        """Labelled examples, oldest first; with `latest_only`, one per comment (its last)."""
        self._check()
        examples = [e for e in self.label_rows if site_id is None or e.site_id == site_id]
        if not latest_only:
            return examples
        last = {(e.site_id, e.comment_id): e for e in examples}
        return sorted(last.values(), key=lambda e: e.labelled_at)

    async def add_label(self, example: LabelledExample) -> None:
        self._check()
        self.label_rows.append(example)

    async def get_item(self, site_id: str, comment_id: str) -> ReviewItem:
        self._check()
        try:
            return self.items[site_id, comment_id]
        except KeyError:
            raise ReviewNotFound(site_id, comment_id) from None

    async def author_history(
        self, site_id: str, author_id: str, *, limit: int = 20, before: datetime | None = None
    ) -> list[HistoryEntry]:
        self._check()
        given = self.history.get((site_id, author_id), [])  # set by a test directly
        named = {h.comment_id for h in given}
        keys = {k for k, c in self.stored.items() if k[0] == site_id and c.author_id == author_id}
        keys |= {k for k, i in self.items.items() if k[0] == site_id and i.author_id == author_id}
        derived = [
            HistoryEntry(
                s.comment_id, s.text, self._created(k), s.action, s.decided_by, s.decided_at
            )
            for k in sorted(keys)
            if k[1] not in named and (s := await self.comment_summary(*k)) is not None
        ]
        entries = sorted(given + derived, key=lambda h: (-h.decided_at.timestamp(), h.comment_id))
        return [h for h in entries if before is None or h.decided_at < before][:limit]

    def _created(self, key: tuple[str, str]) -> datetime | None:
        stored = self.stored.get(key)
        item = self.items.get(key)
        return stored.created_at if stored is not None else item.created_at if item else None

    async def author_statuses(
        self,
        site_id: str,
        *,
        status: AuthorStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuthorMark]:
        self._check()
        after = _decode_cursor(cursor, 1)[0] if cursor else None
        found = sorted(
            (
                m
                for (site, author), m in self.author_marks.items()
                if site == site_id
                and (status is None or m.status is status)
                and (after is None or author > after)
            ),
            key=lambda m: m.author_id,
        )
        page = found[:limit]
        more = len(found) > limit and page
        return Page(tuple(page), _encode_cursor([page[-1].author_id]) if more else None)

    async def author_status(self, site_id: str, author_id: str) -> AuthorMark | None:
        self._check()
        return self.author_marks.get((site_id, author_id))

    async def set_author_status(self, mark: AuthorMark) -> tuple[AuthorMark, AuthorMark | None]:
        self._check()
        key = (mark.site_id, mark.author_id)
        before = self.author_marks.get(key)
        if before is not None and (before.status, before.note) == (mark.status, mark.note):
            return before, before
        self.author_marks[key] = mark
        await self.add_audit(
            mark.set_by,
            author_audit_action(mark.status, set_=True),
            mark.site_id,
            None,
            author_audit_detail(mark.author_id, mark.status, mark.note, before),
            now=mark.set_at,
        )
        return mark, before

    async def clear_author_status(
        self, site_id: str, author_id: str, *, actor: str, now: datetime
    ) -> AuthorMark | None:
        self._check()
        before = self.author_marks.pop((site_id, author_id), None)
        if before is not None:
            await self.add_audit(
                actor,
                author_audit_action(before.status, set_=False),
                site_id,
                None,
                author_audit_detail(author_id, None, None, before),
                now=now,
            )
        return before

    async def comment_summary(self, site_id: str, comment_id: str) -> CommentSummary | None:
        self._check()
        item = self.items.get((site_id, comment_id))
        if item is not None:
            waiting = item.status is ReviewStatus.PENDING
            return CommentSummary(
                item.comment_id,
                item.text,
                item.author_id,
                item.author_name,
                Action.REVIEW if waiting else item.decision or Action.REVIEW,
                item.decided_by or "auto",
                item.decided_at or item.queued_at,
                None if waiting else item.decision_reason,
            )
        c = self.stored.get((site_id, comment_id))
        if c is None:
            return None
        return CommentSummary(
            c.comment_id, c.text, c.author_id, c.author_name, c.action, "auto", c.decided_at, None
        )

    async def author_counts(self, site_id: str, author_id: str) -> AuthorCounts:
        self._check()
        keys = {k for k, c in self.stored.items() if k[0] == site_id and c.author_id == author_id}
        keys |= {k for k, i in self.items.items() if k[0] == site_id and i.author_id == author_id}
        actions = [s.action for k in keys if (s := await self.comment_summary(*k)) is not None]
        approved = actions.count(Action.APPROVE)
        rejected = actions.count(Action.REJECT)
        return AuthorCounts(
            len(actions),
            approved,
            rejected,
            len(actions) - approved - rejected,
            len(keys & self.reported),
        )

    async def audit_log(
        self, sites: frozenset[str] | None, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        self._check()
        below = int(_decode_cursor(cursor, 1)[0]) if cursor else None
        found = [
            a
            for a in reversed(self.audit)
            if (sites is None or a.site_id in sites) and (below is None or a.id < below)
        ]
        page = found[:limit]
        more = len(found) > limit
        return Page(tuple(page), _encode_cursor([str(page[-1].id)]) if more and page else None)

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
        self._check()
        self.audit.append(
            AuditEntry(len(self.audit) + 1, now, actor, action, site_id, comment_id, detail)
        )

    async def queue_stats(self, sites: frozenset[str] | None) -> list[QueueStats]:
        self._check()
        by_site: dict[str, list[ReviewItem]] = {}
        for item in self._pending(sites):
            by_site.setdefault(item.site_id, []).append(item)
        return [
            QueueStats(
                site,
                len(items),
                sum(1 for i in items if i.claimed_by is not None),
                min(i.queued_at for i in items),
            )
            for site, items in sorted(by_site.items())
        ]

    async def spot_check_counts(self, sites: frozenset[str] | None) -> list[SpotCheckCounts]:
        self._check()
        found: dict[tuple[str, Action], list[int]] = {}
        for site, auto, verdict in self.spot_labels:
            if sites is None or site in sites:
                row = found.setdefault((site, auto), [0, 0, 0])
                row[0] += 1
                row[1] += int(verdict is not auto)
        for item in self._pending(sites):
            if item.spot_check:
                found.setdefault((item.site_id, item.auto_action), [0, 0, 0])[2] += 1
        return [
            SpotCheckCounts(site, auto, n, k, w)
            for (site, auto), (n, k, w) in sorted(found.items())
        ]

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        self._check()
        return self.outbox[:limit]

    async def outbox_backlog(self) -> int:
        self._check()
        return len(self.outbox)

    async def outbox_mark_sent(self, ids: Sequence[int], *, now: datetime) -> None:
        self._check()
        self.outbox = [r for r in self.outbox if r.id not in set(ids)]

    # --- bulk actions, as the SQL store keeps them (service/adapters/sql/bulk.py) -------------

    async def create_bulk(self, action: BulkAction, *, hold_until: datetime) -> BulkAction:
        self._check()
        site, now = action.site_id, action.created_at
        for comment_id in action.comment_ids:
            item = await self.get_item(site, comment_id)
            if item.status is ReviewStatus.DECIDED:
                raise AlreadyDecided(site, comment_id, item.decided_by)
            if self._held_by_other(item, action.moderator_id, now):
                raise ClaimedByOther(site, comment_id)
        held = sorted(
            (comment_id, other.id)
            for other in self.bulk.values()
            if other.status is BulkStatus.PENDING and other.site_id == site
            for comment_id in set(other.comment_ids) & set(action.comment_ids)
        )
        if held:
            raise InBulkAction(site, *held[0])
        for comment_id in action.comment_ids:
            item = self.items[site, comment_id]
            self.add(replace(item, claimed_by=action.moderator_id, claim_expires_at=hold_until))
        self.bulk[action.id] = action
        await self.add_audit(
            f"moderator:{action.moderator_id}",
            "bulk_create",
            site,
            None,
            f"bulk action {action.id}: {action.action.value} of {len(action.items)} items",
            now=now,
        )
        return action

    async def get_bulk(self, action_id: str) -> BulkAction:
        self._check()
        try:
            return self.bulk[action_id]
        except KeyError:
            raise BulkActionNotFound(action_id) from None

    async def pending_bulk(self, moderator_id: str, site_id: str | None) -> list[BulkAction]:
        self._check()
        return sorted(
            (
                a
                for a in self.bulk.values()
                if a.status is BulkStatus.PENDING
                and a.moderator_id == moderator_id
                and site_id in (None, a.site_id)
            ),
            key=lambda a: (a.created_at, a.id),
        )

    async def due_bulk(self, now: datetime, limit: int) -> list[str]:
        self._check()
        due = sorted((a.apply_at, a.id) for a in self.bulk.values() if a.due(now))
        return [action_id for _, action_id in due[:limit]]

    async def undo_bulk(
        self, action_id: str, actor: str, *, lease_until: datetime, now: datetime
    ) -> BulkAction:
        action = await self.get_bulk(action_id)
        if not action.undoable(now):
            raise BulkActionClosed(action, now)
        undone = replace(action, status=BulkStatus.UNDONE, finished_at=now)
        self.bulk[action_id] = undone
        for comment_id in action.comment_ids:
            item = self.items.get((action.site_id, comment_id))
            if (
                item is not None
                and item.status is ReviewStatus.PENDING
                and item.claimed_by == action.moderator_id
            ):
                self.add(replace(item, claim_expires_at=lease_until))
        await self.add_audit(
            actor, "bulk_undo", action.site_id, None, f"bulk action {action_id} undone", now=now
        )
        return undone

    async def apply_bulk(
        self, action_id: str, drafts: Mapping[str, OutboxDraft], *, now: datetime
    ) -> BulkAction | None:
        action = await self.get_bulk(action_id)
        if not action.due(now):
            return None
        outcomes: dict[str, ItemOutcome] = {}
        for comment_id in sorted(set(action.comment_ids)):
            draft = drafts.get(comment_id)
            if draft is None:
                outcomes[comment_id] = ItemOutcome.NOT_FOUND
                continue
            verdict = ModeratorDecision(
                action.site_id,
                comment_id,
                action.action,
                action.reason,
                action.note,
                action.moderator_id,
                action.reason_given,
            )
            try:
                await self.decide(verdict, draft, now=now)
            except ReviewNotFound:
                outcomes[comment_id] = ItemOutcome.NOT_FOUND
            except AlreadyDecided:
                outcomes[comment_id] = ItemOutcome.ALREADY_DECIDED
            except ClaimedByOther:
                outcomes[comment_id] = ItemOutcome.CLAIMED_BY_OTHER
            else:
                outcomes[comment_id] = ItemOutcome.DECIDED
        applied = replace(
            action,
            status=BulkStatus.APPLIED,
            finished_at=now,
            items=tuple(replace(i, outcome=outcomes[i.comment_id]) for i in action.items),
        )
        self.bulk[action_id] = applied
        await self.add_audit(
            f"moderator:{action.moderator_id}",
            "bulk_apply",
            action.site_id,
            None,
            f"bulk action {action_id} applied",
            now=now,
        )
        return applied


def _cleaned(c: StoredComment) -> StoredComment:
    """PostgreSQL text cannot hold NUL: the SQL stores keep U+FFFD instead, and so does this."""

    def clean(value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "\ufffd")

    return replace(
        c,
        text=c.text.replace("\x00", "\ufffd"),
        author_id=clean(c.author_id),
        author_name=clean(c.author_name),
        thread_id=clean(c.thread_id),
        parent_id=clean(c.parent_id),
        thread_url=clean(c.thread_url),
        thread_title=clean(c.thread_title),
    )
