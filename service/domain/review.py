"""The review queue's values: what waits for a human, claims, moderator decisions, audit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from service.domain.authors import AuthorStatuses
from service.domain.errors import ModerationError
from service.domain.model import Action, Decision, Language, ModeratorReason, Reason, Scores
from service.domain.spot_check import is_spot_check_round

T = TypeVar("T")


class ReviewStatus(StrEnum):
    PENDING = "pending"  # waiting, or claimed with a lease (see `claimed_by`)
    DECIDED = "decided"


class QueueOrder(StrEnum):
    OLDEST = "oldest"  # first queued first
    RISK = "risk"  # highest max(spam, abuse) first
    REPORTS = "reports"  # most credible reports first (summed reporter reliability), then risk


@dataclass(frozen=True, slots=True)
class StoredComment:
    """One automatically decided comment, as the pipeline writes it (every action, so that an
    author's history is complete; `review` ones also enter the queue, unless not `queued`)."""

    site_id: str
    comment_id: str
    text: str
    author_id: str | None
    author_name: str | None
    thread_id: str | None
    created_at: datetime | None
    scores: Scores
    reasons: tuple[Reason, ...]
    action: Action
    model_version: str
    policy_version: str
    decided_at: datetime
    event_json: str  # the comment event as received, unknown fields included
    text_hash: str | None = None  # of the normalised text, for campaign detection
    campaign_author: str | None = None  # "author:<id>" or "anon:<site>:<comment>"
    language: Language | None = None  # the decision's: given or detected
    # False: a `review` that another system's moderators decide (Coral's own queue holds
    # the comment), so it does not join ours
    queued: bool = True
    parent_id: str | None = None  # the comment this one answers, on the same site
    thread_url: str | None = None  # the article: an http(s) URL (the codec checked it)
    thread_title: str | None = None
    # an approval or rejection sampled for a moderator to check (it joins the queue with
    # this reason; the automatic decision stands): see `service/domain/spot_check.py`
    spot_check: Reason | None = None


AuthorKey = tuple[str, str]  # (site_id, author_id)


@dataclass(frozen=True, slots=True)
class AutoDecision:
    """The automatic decision a stored comment received, and when."""

    decision: Decision
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """The history the rules need for one batch."""

    authors: tuple[AuthorKey, ...]
    hashes: tuple[str, ...]
    exclude: tuple[tuple[str, str], ...]  # (site_id, comment_id) of the batch itself
    flood_since: datetime
    campaign_since: datetime
    statuses: tuple[AuthorKey, ...] = ()  # whose trusted / blocked status to read


@dataclass(frozen=True, slots=True)
class Activity:
    """Stored comments of the batch's authors and texts, the batch's own excluded."""

    prior: Mapping[AuthorKey, int] = field(default_factory=dict)  # all-time count
    recent: Mapping[AuthorKey, tuple[datetime, ...]] = field(default_factory=dict)
    texts: Mapping[str, tuple[tuple[str, datetime], ...]] = field(default_factory=dict)
    statuses: AuthorStatuses = field(default_factory=dict)  # the authors who have one


@dataclass(frozen=True, slots=True)
class ReviewItem:
    site_id: str
    comment_id: str
    text: str
    author_id: str | None
    author_name: str | None
    thread_id: str | None
    created_at: datetime | None
    scores: Scores
    reasons: tuple[Reason, ...]
    model_version: str
    policy_version: str
    queued_at: datetime
    status: ReviewStatus
    claimed_by: str | None  # moderator id, while the lease runs
    claim_expires_at: datetime | None
    decision: Action | None  # approve | reject once decided
    decided_by: str | None  # "moderator:<id>"
    decided_at: datetime | None
    decision_reason: ModeratorReason | None
    note: str | None
    report_weight: float = 0.0  # summed reliability of this round's reporters
    language: Language | None = None  # the automatic decision's: given or detected
    parent_id: str | None = None  # the comment this one answers, on the same site
    thread_url: str | None = None  # the article: an http(s) URL (the codec checked it)
    thread_title: str | None = None
    auto_action: Action = Action.REVIEW  # what the machine decided (not review: a spot check)

    @property
    def spot_check(self) -> bool:
        """An automatic approval or rejection queued as a spot check in this round."""
        return is_spot_check_round(self.auto_action, (r.code.value for r in self.reasons))

    @property
    def risk(self) -> float:
        return max(self.scores.spam, self.scores.abuse)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One of an author's comments on a site, with its latest decision."""

    comment_id: str
    text: str
    created_at: datetime | None
    action: Action  # the final action, or `review` while it waits
    decided_by: str
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class CommentSummary:
    """Any stored comment, with its latest decision: the parent an item answers."""

    comment_id: str
    text: str
    author_id: str | None
    author_name: str | None
    action: Action  # the final action, or `review` while it waits
    decided_by: str  # "auto" or "moderator:<id>"
    decided_at: datetime
    decision_reason: ModeratorReason | None  # a moderator's reason


@dataclass(frozen=True, slots=True)
class AuthorCounts:
    """An author's comments on one site, all of them: by their latest decision, and how many
    readers reported (once or more; the learning loop's reports)."""

    total: int
    approved: int
    rejected: int
    waiting: int  # in review: in our queue, or another system's
    reported: int


@dataclass(frozen=True, slots=True)
class ModeratorDecision:
    site_id: str
    comment_id: str
    action: Action  # approve or reject (review is not a moderator's decision)
    reason: ModeratorReason
    note: str | None
    moderator_id: str
    reason_given: bool = True  # False: the request named no reason and `reason` is the default


@dataclass(frozen=True, slots=True)
class OutboxDraft:
    """What a decision publishes, encoded by the caller before the store writes it."""

    event_id: str
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    event_id: str
    topic: str
    key: bytes
    value: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str  # "moderator:<id>", "admin:<id>", "auto"
    action: str  # claim, release, decide, ...
    site_id: str | None
    comment_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class QueueStats:
    site_id: str
    depth: int  # pending items, claimed or not
    claimed: int
    oldest_queued_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # opaque; None on the last page


class InvalidModeratorDecision(ModerationError):
    pass


def moderator_decision(item: ReviewItem, decision: ModeratorDecision) -> Decision:
    """The final decision event a moderator's verdict publishes: the item's scores and
    versions, the moderator's reason and note."""
    if decision.action is Action.REVIEW:
        raise InvalidModeratorDecision("a moderator decides approve or reject, not review")
    detail = decision.note or f"{decision.action.value} by a moderator: {decision.reason.value}"
    return Decision(
        comment_id=item.comment_id,
        site_id=item.site_id,
        action=decision.action,
        scores=item.scores,
        reasons=(Reason(decision.reason, detail),),
        model_version=item.model_version,
        policy_version=item.policy_version,
        decided_by=f"moderator:{decision.moderator_id}",
    )
