"""Values the core works with. All frozen; labels are named, never positional."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVIEW = "review"


class Label(StrEnum):
    """The classifier's labels, in the order every score vector uses."""

    SPAM = "spam"
    ABUSE = "abuse"


class SubScore(StrEnum):
    """The abuse sub-scores (Perspective's attributes besides toxicity, which is `abuse`)."""

    SEVERE_TOXICITY = "severe_toxicity"
    INSULT = "insult"
    THREAT = "threat"
    IDENTITY_ATTACK = "identity_attack"
    PROFANITY = "profanity"


class ReasonCode(StrEnum):
    SPAM_ABOVE_REJECT = "spam_above_reject_threshold"
    ABUSE_ABOVE_REJECT = "abuse_above_reject_threshold"
    SPAM_UNCERTAIN = "spam_uncertain"
    ABUSE_UNCERTAIN = "abuse_uncertain"
    # an abuse sub-score at or above its reject threshold, or between its two thresholds
    SEVERE_TOXICITY_ABOVE_REJECT = "severe_toxicity_above_reject_threshold"
    INSULT_ABOVE_REJECT = "insult_above_reject_threshold"
    THREAT_ABOVE_REJECT = "threat_above_reject_threshold"
    IDENTITY_ATTACK_ABOVE_REJECT = "identity_attack_above_reject_threshold"
    PROFANITY_ABOVE_REJECT = "profanity_above_reject_threshold"
    SEVERE_TOXICITY_UNCERTAIN = "severe_toxicity_uncertain"
    INSULT_UNCERTAIN = "insult_uncertain"
    THREAT_UNCERTAIN = "threat_uncertain"
    IDENTITY_ATTACK_UNCERTAIN = "identity_attack_uncertain"
    PROFANITY_UNCERTAIN = "profanity_uncertain"
    UNSUPPORTED_LANGUAGE = "unsupported_language"  # the model was not trained on it
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
    SPOT_CHECK = "spot_check"  # a random sample of automatic decisions, checked by a human


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
    # Since event 1.1: the article's address (an http(s) URL, checked by the codec) and title
    thread_url: str | None = None
    thread_title: str | None = None
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

    def sub(self, name: SubScore) -> float | None:
        match name:
            case SubScore.SEVERE_TOXICITY:
                return self.severe_toxicity
            case SubScore.INSULT:
                return self.insult
            case SubScore.THREAT:
                return self.threat
            case SubScore.IDENTITY_ATTACK:
                return self.identity_attack
            case SubScore.PROFANITY:
                return self.profanity


UNDETERMINED: Final = "und"  # BCP 47: the language could not be told


@dataclass(frozen=True, slots=True)
class Language:
    """A comment's language: the event's `lang` (`detected` False) or the detector's verdict.
    `code` is a lower-case ISO 639 code (the primary subtag of a BCP 47 tag), or `und` when
    the detector could not tell (too short, no words, no language confidently ahead)."""

    code: str
    detected: bool
    confidence: float | None = None  # the detector's probability, for a detected language

    @property
    def determined(self) -> bool:
        return self.code != UNDETERMINED


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
    language: Language | None = None  # None: neither given nor detected

    @property
    def final(self) -> bool:
        """A review decision is provisional: a moderator's decision follows."""
        return self.action is not Action.REVIEW
