"""Values the core works with. All frozen; labels are named, never positional."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVIEW = "review"


class Label(StrEnum):
    """The classifier's labels, in the order every score vector uses."""

    SPAM = "spam"
    ABUSE = "abuse"


class ReasonCode(StrEnum):
    SPAM_ABOVE_REJECT = "spam_above_reject_threshold"
    ABUSE_ABOVE_REJECT = "abuse_above_reject_threshold"
    SPAM_UNCERTAIN = "spam_uncertain"
    ABUSE_UNCERTAIN = "abuse_uncertain"
    BELOW_THRESHOLDS = "below_thresholds"
    BLOCKED_AUTHOR = "blocked_author"
    TRUSTED_AUTHOR = "trusted_author"
    BLOCKED_TERM = "blocked_term"
    HELD_TERM = "held_term"
    BLOCKED_DOMAIN = "blocked_domain"
    TOO_MANY_LINKS = "too_many_links"
    FIRST_TIME_AUTHOR_LINK = "first_time_author_link"
    NEW_AUTHOR = "new_author"
    FLOOD = "flood"
    CAMPAIGN = "campaign"
    SCORING_FAILED = "scoring_failed"
    STAFF_AUTHOR = "staff_author"
    REPORTED = "reported"  # a reader flagged the comment after it was decided
    APPEALED = "appealed"  # the author contested its rejection


@dataclass(frozen=True, slots=True)
class Author:
    id: str | None = None
    name: str | None = None
    email: str | None = None
    url: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    site_id: str
    text: str
    thread_id: str | None = None
    parent_id: str | None = None
    author: Author = field(default_factory=Author)
    created_at: datetime | None = None
    lang: str | None = None
    # Fields the contract does not name are kept, not rejected.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.site_id}:{self.id}"


@dataclass(frozen=True, slots=True)
class Scores:
    spam: float
    abuse: float
    # Abuse sub-scores (Perspective's attributes; toxicity is ``abuse``): ``None`` when
    # the model has none.
    severe_toxicity: float | None = None
    insult: float | None = None
    threat: float | None = None
    identity_attack: float | None = None
    profanity: float | None = None

    def of(self, label: Label) -> float:
        return self.spam if label is Label.SPAM else self.abuse


class ModeratorReason(StrEnum):
    """The reason code a moderator gives with a decision."""

    OK = "ok"
    SPAM = "spam"
    ABUSE = "abuse"
    OFF_TOPIC = "off_topic"
    PERSONAL_INFO = "personal_info"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode | ModeratorReason
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    comment_id: str
    site_id: str
    action: Action
    scores: Scores
    reasons: tuple[Reason, ...]
    model_version: str
    policy_version: str
    decided_by: str = "auto"

    @property
    def final(self) -> bool:
        """A review decision is provisional: a moderator's decision follows."""
        return self.action is not Action.REVIEW
