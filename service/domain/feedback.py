"""What readers and authors say after a decision (reports and appeals), and what the
moderators' decisions teach the model (labelled examples). Pure values and rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service.domain.errors import ModerationError
from service.domain.model import Action, ModeratorReason


class FeedbackKind(StrEnum):
    REPORT = "report"  # a reader flagged a published comment
    APPEAL = "appeal"  # the author contests a rejection


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: FeedbackKind
    site_id: str
    comment_id: str
    actor_id: str  # the reporter, or the appealing author ("" when the site names none)
    reason: str
    at: datetime


class FeedbackOutcome(StrEnum):
    """What one report or appeal did to the review queue."""

    QUEUED = "queued"  # the comment went (back) into the queue
    MERGED = "merged"  # it was in the queue already: the reason was added to it
    DUPLICATE = "duplicate"  # this reporter (author) already reported (appealed) it
    NOT_APPLICABLE = "not_applicable"  # a report of a rejected comment: nothing to do


class UnknownComment(ModerationError):
    """Feedback about a comment this service never decided."""

    def __init__(self, site_id: str, comment_id: str) -> None:
        super().__init__(f"no decided comment {site_id}:{comment_id}")
        self.site_id = site_id
        self.comment_id = comment_id


class NotRejected(ModerationError):
    """An appeal of a comment that is not rejected: there is nothing to contest."""

    def __init__(self, site_id: str, comment_id: str, action: str) -> None:
        super().__init__(f"{site_id}:{comment_id} is not rejected (it is {action})")
        self.site_id = site_id
        self.comment_id = comment_id


@dataclass(frozen=True, slots=True)
class ReporterStats:
    site_id: str
    reporter_id: str
    upheld: int  # reports a moderator agreed with (rejected the comment)
    dismissed: int  # reports a moderator disagreed with (approved the comment)

    @property
    def reliability(self) -> float:
        return reliability(self.upheld, self.dismissed)


def reliability(upheld: int, dismissed: int) -> float:
    """The share of a reporter's reports that were upheld, with one upheld and one dismissed
    assumed up front: a new reporter counts 0.5, and a few reports move it only a little."""
    return (upheld + 1) / (upheld + dismissed + 2)


class TrainingLabel(StrEnum):
    """What a moderator's decision says about a comment, for the model."""

    OK = "ok"
    SPAM = "spam"
    ABUSE = "abuse"
    OTHER = "other"  # rejected for a reason the model does not score (off topic, ...)


class ReasonSource(StrEnum):
    """Who said why a comment was rejected: only a moderator's own reason is training data."""

    MODERATOR = "moderator"  # chosen by the moderator (an approval's `ok` is the action itself)
    # not chosen by a moderator: a rejection that named no reason (labelled `other`), or one
    # recorded before reasons had a source, when the page sent the model's own belief
    GUESSED = "guessed"


def reason_source(action: Action, *, reason_given: bool) -> ReasonSource:
    """An approval says `ok` whatever the reason field holds; a rejection says why only if
    the moderator gave a reason."""
    if action is Action.APPROVE or reason_given:
        return ReasonSource.MODERATOR
    return ReasonSource.GUESSED


def training_label(action: Action, reason: ModeratorReason) -> TrainingLabel:
    if action is Action.APPROVE:
        return TrainingLabel.OK
    if reason is ModeratorReason.SPAM:
        return TrainingLabel.SPAM
    if reason is ModeratorReason.ABUSE:
        return TrainingLabel.ABUSE
    return TrainingLabel.OTHER


def overturned(auto_action: Action, final_action: Action) -> bool:
    """A human reversed the automatic decision (a queued comment was never decided)."""
    return auto_action is not Action.REVIEW and auto_action is not final_action


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """One final human decision, as training data."""

    site_id: str
    comment_id: str
    text: str
    label: TrainingLabel
    auto_action: Action
    final_action: Action
    overturned: bool
    labelled_by: str
    labelled_at: datetime
    reason_source: ReasonSource  # retraining learns only from `moderator`
