"""Ports: what the core needs from the outside world, as Protocols. Adapters implement them;
tests pass small fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from service.domain.access import Identity
from service.domain.authors import AuthorMark, AuthorStatus
from service.domain.bulk import BulkAction
from service.domain.feedback import (
    Feedback,
    FeedbackOutcome,
    LabelledExample,
    ReporterStats,
)
from service.domain.model import Comment, Language, Scores
from service.domain.policy import Policy
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
    StoredComment,
)
from service.domain.spot_check import SpotCheckCounts


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one committed batch counts, for metrics: decisions by action, dead letters by
    reason, and the comments the model failed to score."""

    actions: Mapping[str, int]
    dead_letters: Mapping[str, int]
    scoring_failures: int = 0


class Classifier(Protocol):
    """Scores comments for every label. Pure CPU; callers run it off the event loop."""

    @property
    def version(self) -> str: ...

    def score(self, comments: Sequence[Comment]) -> list[Scores]: ...


@runtime_checkable
class PrenormalizedClassifier(Classifier, Protocol):
    """A classifier that takes each text already normalised with its own `normalizer`, so
    that the pipeline, which normalises every text anyway, does not make it normalise again.
    `score_normalized(comments, [normalizer(c.text) for c in comments])` gives exactly what
    `score(comments)` gives."""

    @property
    def normalizer(self) -> Callable[[str], str]: ...

    def score_normalized(
        self, comments: Sequence[Comment], normalized: Sequence[str]
    ) -> list[Scores]: ...


class LanguageDetector(Protocol):
    """Tells the language of texts (`und` where it cannot). Pure CPU; callers run it off the
    event loop, a batch at a time."""

    def detect(self, texts: Sequence[str]) -> list[Language]: ...


class Authenticator(Protocol):
    """Who holds a bearer token (the tokens file behind it): `None` for an unknown token.
    Compares in constant time; never logs the token."""

    def authenticate(self, bearer: str) -> Identity | None: ...


class PromoteModel(Protocol):
    """Makes the artifact directory `candidate` (version `version`) the live model at
    `model_path`, keeping the previous one; returns where the new version now lives."""

    def __call__(self, model_path: Path, candidate: Path, version: str) -> Path: ...


class PolicySource(Protocol):
    """Where the moderation policy is written (the TOML file). Reads block: callers run them
    off the event loop."""

    def read(self) -> tuple[Policy, Mapping[str, Any]]:
        """The whole policy, compiled, with the raw tables it came from (for describing a
        change); a policy with any problem raises `InvalidPolicy` naming every problem."""
        ...

    def describe_change(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
        """What differs between two raw tables, in one line for the audit log."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class ItemReader(Protocol):
    """One item of the review queue (the bulk actions read their items with it)."""

    async def get_item(self, site_id: str, comment_id: str) -> ReviewItem:
        """Any stored comment that went to review (pending or decided); `ReviewNotFound`
        otherwise."""
        ...


class BulkActionStore(ItemReader, Protocol):
    """Bulk actions held for their undo window, and the items they hold."""

    async def create_bulk(self, action: BulkAction, *, hold_until: datetime) -> BulkAction:
        """In one transaction: store the pending action, claim each of its items for its
        moderator until `hold_until`, and audit it. All or nothing: raises `ReviewNotFound`,
        `AlreadyDecided`, `ClaimedByOther` or `InBulkAction` for the first item that cannot
        be held."""
        ...

    async def get_bulk(self, action_id: str) -> BulkAction:
        """Raises `BulkActionNotFound`."""
        ...

    async def pending_bulk(self, moderator_id: str, site_id: str | None) -> list[BulkAction]:
        """The moderator's pending actions, oldest first."""
        ...

    async def due_bulk(self, now: datetime, limit: int) -> list[str]:
        """Ids of pending actions whose window has closed, earliest first."""
        ...

    async def undo_bulk(
        self, action_id: str, actor: str, *, lease_until: datetime, now: datetime
    ) -> BulkAction:
        """Mark a pending action undone if its window is still open (a conditional update:
        apply and undo never both win), give its items back to its moderator's claim until
        `lease_until`, and audit it. Raises `BulkActionNotFound` or `BulkActionClosed`."""
        ...

    async def apply_bulk(
        self, action_id: str, drafts: Mapping[str, OutboxDraft], *, now: datetime
    ) -> BulkAction | None:
        """If the action is pending and due, in one transaction: mark it applied (a
        conditional update, so two instances never both apply it), decide each item still
        pending and not held by another moderator with its decision's outbox record (`drafts`
        by comment id), and audit it. None when this call did not apply it (not due, undone,
        or applied by someone else)."""
        ...


class StoreLifecycle(Protocol):
    """Schema, connections and health: what the composition root and `/readyz` use."""

    async def migrate(self) -> None:
        """Apply the versioned schema migrations not yet applied. Safe to call on every start
        and from several instances at once."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""


class DecisionLog(Protocol):
    """The automatic decisions: what the Kafka pipeline, `/api/v1/moderate` and the
    Perspective-compatible API record and read."""

    async def record_decisions(self, comments: Sequence[StoredComment]) -> None:
        """Store automatically decided comments; `review` ones join the queue. Idempotent on
        (site_id, comment_id): a replayed comment changes nothing, a moderator's decision
        included. All or nothing."""

    async def record_one(self, comment: StoredComment, outbox: OutboxDraft) -> bool:
        """Store one automatically decided comment and its decision's outbox record in one
        transaction, unless the comment is stored already: then nothing is written and the
        answer is False."""
        ...

    async def auto_decision(self, site_id: str, comment_id: str) -> AutoDecision | None:
        """The automatic decision of a stored comment, or None."""
        ...

    async def activity(self, query: ActivityQuery) -> Activity:
        """The stored history of a batch's authors (all-time count, times within the flood
        window) and texts (who posted each within the campaign window), shared by every
        instance; the batch's own comments are left out."""
        ...


class ReviewQueue(ItemReader, Protocol):
    """The queue the moderators work: listing, claims, decisions, an item's context."""

    async def list_queue(
        self,
        sites: frozenset[str] | None,  # None: every site
        *,
        reason: str | None = None,  # items with a reason of this code
        older_than: timedelta | None = None,  # queued at least this long ago
        now: datetime,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ReviewItem]:
        """Pending items, oldest first (queued_at, then site_id, comment_id), claimed ones
        included (see `claimed_by`). Raises `InvalidCursor` for a cursor it did not make."""
        ...

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
        """Hand up to `count` unclaimed (or lease-expired) pending items of a site to this
        moderator until `now + lease`. No item is ever handed to two moderators whose leases
        overlap, however many instances claim at once."""
        ...

    async def release(
        self, site_id: str, comment_ids: Sequence[str], moderator_id: str, *, now: datetime
    ) -> list[str]:
        """Give this moderator's claims on these items back to the queue; returns the ids
        released (others were not claimed by this moderator)."""
        ...

    async def decide(
        self, decision: ModeratorDecision, outbox: OutboxDraft, *, now: datetime
    ) -> ReviewItem:
        """Write a moderator's decision, its outbox record and an audit entry in one
        database transaction; the outbox record only if `verdict_publishes` (a spot check
        that confirms the automatic decision publishes nothing). Raises `ReviewNotFound`,
        `AlreadyDecided`, or `ClaimedByOther` (another moderator holds an unexpired lease)."""
        ...

    async def author_history(
        self, site_id: str, author_id: str, *, limit: int = 20, before: datetime | None = None
    ) -> list[HistoryEntry]:
        """The author's comments on this site, newest decision first."""
        ...

    async def comment_summary(self, site_id: str, comment_id: str) -> CommentSummary | None:
        """Any stored comment of this site (decided automatically or by a moderator, or
        waiting: `review`), or None: the parent an item answers."""
        ...

    async def author_counts(self, site_id: str, author_id: str) -> AuthorCounts:
        """All the author's comments on this site by their latest decision, and how many of
        them readers reported."""
        ...

    async def queue_stats(self, sites: frozenset[str] | None) -> list[QueueStats]: ...


class AuthorStatusStore(Protocol):
    """Authors trusted or blocked on a site by its moderators."""

    async def author_statuses(
        self,
        site_id: str,
        *,
        status: AuthorStatus | None = None,  # None: trusted and blocked
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuthorMark]:
        """The site's trusted and blocked authors, by author id. Raises `InvalidCursor`."""
        ...

    async def author_status(self, site_id: str, author_id: str) -> AuthorMark | None: ...

    async def set_author_status(self, mark: AuthorMark) -> tuple[AuthorMark, AuthorMark | None]:
        """Trust or block the author on the site, with an audit entry, in one transaction;
        returns the status in force and the one before (None: none). Asking for the status
        and note already in force changes nothing (no audit entry; who and when stay)."""
        ...

    async def clear_author_status(
        self, site_id: str, author_id: str, *, actor: str, now: datetime
    ) -> AuthorMark | None:
        """Lift the author's status on the site, with an audit entry; returns the status
        lifted, or None (and nothing is written) if there was none."""


class AuditLog(Protocol):
    """Who did what: every moderator, admin and policy action."""

    async def audit_log(
        self, sites: frozenset[str] | None, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        """Newest first."""
        ...

    async def add_audit(
        self,
        actor: str,
        action: str,
        site_id: str | None,
        comment_id: str | None,
        detail: str,
        *,
        now: datetime,
    ) -> None: ...


class SpotCheckStore(Protocol):
    """The verdicts on spot checks, for the machine's live error rate."""

    async def spot_check_counts(self, sites: frozenset[str] | None) -> list[SpotCheckCounts]:
        """Per site and automatic action (approve, reject): the verdicts given on spot checks,
        how many overturned it, and how many spot checks still wait; sites with none left
        out."""
        ...


class OutboxStore(Protocol):
    """Decision events written with their transaction, waiting for the relay."""

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        """Unsent outbox records, oldest first."""
        ...

    async def outbox_mark_sent(self, ids: Sequence[int], *, now: datetime) -> None: ...

    async def outbox_backlog(self) -> int:
        """How many outbox records wait to be sent."""
        ...


class ReviewStore(
    StoreLifecycle,
    DecisionLog,
    ReviewQueue,
    AuthorStatusStore,
    AuditLog,
    SpotCheckStore,
    OutboxStore,
    BulkActionStore,
    Protocol,
):
    """The whole review store: every role above, as the SQL adapter (SQLite, PostgreSQL) and
    the in-memory fake implement it, and as the same suite tests them. Each caller asks only
    for the roles it uses. Every method may raise `StoreUnavailable` (transient); the domain
    errors say what is wrong with a request."""


class PipelineMetrics(Protocol):
    """What the Kafka pipeline reports. The Prometheus adapter implements it."""

    def batch_committed(
        self, counts: BatchCounts, processing_seconds: float, latencies: Sequence[float]
    ) -> None: ...

    def consumer_lag(self, topic: str, partition: int, records: int) -> None: ...

    def partitions_revoked(self, topic: str, partitions: Sequence[int]) -> None: ...

    def transaction_aborted(self) -> None: ...

    def dead_lettered(self, reason: str) -> None:
        """A record dead-lettered outside a normal batch (it could not even be read)."""

    def retried(self, component: str) -> None: ...


class ReviewMetrics(Protocol):
    def moderator_action(self, action: str, count: int = 1) -> None: ...


class PerspectiveMetrics(Protocol):
    def perspective_request(self, method: str, outcome: str, seconds: float) -> None:
        """One request to the Perspective-compatible API: `outcome` is `ok` or the error's
        status in lower case (`invalid_argument`, `resource_exhausted`, ...)."""


class LearningStore(Protocol):
    """Reports, appeals, reporter reliability and the label store, beside the review queue
    (the SQL store implements both). Moderator decisions write labels in `ReviewStore.decide`."""

    async def apply_feedback(self, feedback: Feedback) -> FeedbackOutcome:
        """Put the comment (back) into the review queue with the reason shown, or merge into
        its pending item. Idempotent per (kind, comment, reporter/author): a repeat is a
        `DUPLICATE` and changes nothing. Raises `UnknownComment`, or `NotRejected` for an
        appeal of an approved comment."""
        ...

    async def reporter_stats(self, site_id: str, reporter_id: str) -> ReporterStats: ...

    async def labels(
        self, *, site_id: str | None = None, latest_only: bool = True
    ) -> list[LabelledExample]:
        """Labelled examples, oldest first; with `latest_only`, one per comment (its last)."""
        ...

    async def recent_texts(self, site_id: str, *, since: datetime, limit: int) -> list[str]:
        """The texts of a site's comments decided since then, newest first."""
        ...

    async def add_label(self, example: LabelledExample) -> None:
        """Store a human label that came with no decision of ours (a client's score
        suggestion); the comment need not be stored."""
