"""Domain errors. None of them knows about HTTP or Kafka."""

from __future__ import annotations

from enum import StrEnum


class ModerationError(Exception):
    """Base of the service's own errors."""


class InvalidPolicy(ModerationError):
    pass


class InvalidCommentReason(StrEnum):
    """Why an incoming event was dead-lettered (the `reason` of a DLQ record)."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    TEXT_TOO_LONG = "text_too_long"
    INVALID_TIMESTAMP = "invalid_timestamp"
    UNKNOWN_COMMENT = "unknown_comment"  # a report or appeal of a comment never decided here
    NOT_REJECTED = "not_rejected"  # an appeal of a comment that is not rejected


class InvalidComment(ModerationError):
    """Poison input: goes to the dead-letter topic with this reason, never retried."""

    def __init__(self, reason: InvalidCommentReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ReviewNotFound(ModerationError):
    def __init__(self, site_id: str, comment_id: str) -> None:
        super().__init__(f"no review item {site_id}:{comment_id}")
        self.site_id = site_id
        self.comment_id = comment_id


class AlreadyDecided(ModerationError):
    def __init__(self, site_id: str, comment_id: str, decided_by: str | None) -> None:
        super().__init__(f"{site_id}:{comment_id} was already decided by {decided_by}")
        self.site_id = site_id
        self.comment_id = comment_id
        self.decided_by = decided_by


class ClaimedByOther(ModerationError):
    def __init__(self, site_id: str, comment_id: str) -> None:
        super().__init__(f"{site_id}:{comment_id} is claimed by another moderator")
        self.site_id = site_id
        self.comment_id = comment_id


class InvalidCursor(ModerationError):
    pass


class StoreUnavailable(ModerationError):
    """The database cannot be reached or refused a write for a passing reason: retry."""

    retriable = True


class StoreFailed(ModerationError):
    """The database refuses writes for a reason that waiting will not mend (disk full,
    read-only, corrupt): the service stops with this message rather than retry forever."""

    retriable = False
