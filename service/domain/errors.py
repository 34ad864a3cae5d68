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
    SCORING_FAILED = "scoring_failed"


class InvalidComment(ModerationError):
    """Poison input: goes to the dead-letter topic with this reason, never retried."""

    def __init__(self, reason: InvalidCommentReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
