"""Report and appeal events: the contract in service/contracts/schemas, and clear reasons
otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from service.contracts.codec import Limits, decode_feedback
from service.domain.errors import InvalidComment, InvalidCommentReason
from service.domain.feedback import FeedbackKind
from tests.schemas import is_valid

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


REPORT = {"comment_id": "c-1", "site_id": "herald", "reason": "spam link", "reporter_id": "r-9"}
APPEAL = {"comment_id": "c-1", "site_id": "herald", "reason": "I was quoting", "author_id": "a"}


def test_a_report_decodes_to_feedback_received_now() -> None:
    got = decode_feedback(FeedbackKind.REPORT, raw({**REPORT, "extra": 1}), Limits(), NOW)

    assert (got.kind, got.site_id, got.comment_id, got.actor_id, got.reason, got.at) == (
        FeedbackKind.REPORT,
        "herald",
        "c-1",
        "r-9",
        "spam link",
        NOW,
    )
    assert is_valid("report.v1", REPORT)


def test_an_appeal_may_leave_out_the_author() -> None:
    doc = {k: v for k, v in APPEAL.items() if k != "author_id"}

    got = decode_feedback(FeedbackKind.APPEAL, raw(doc), Limits(), NOW)

    assert got.actor_id == ""
    assert is_valid("appeal.v1", doc)
    assert is_valid("appeal.v1", APPEAL)


@pytest.mark.parametrize(
    ("kind", "value", "reason", "needle", "schema"),
    [
        (FeedbackKind.REPORT, b"{nope", InvalidCommentReason.INVALID_JSON, "JSON", None),
        (FeedbackKind.REPORT, b"[1]", InvalidCommentReason.NOT_AN_OBJECT, "report", None),
        (
            FeedbackKind.REPORT,
            raw({k: v for k, v in REPORT.items() if k != "reporter_id"}),
            InvalidCommentReason.MISSING_FIELD,
            "reporter_id",
            "report.v1",
        ),
        (
            FeedbackKind.REPORT,
            raw({**REPORT, "reason": "   "}),
            InvalidCommentReason.INVALID_VALUE,
            "reason",
            None,
        ),
        (
            FeedbackKind.REPORT,
            raw({**REPORT, "site_id": "no spaces"}),
            InvalidCommentReason.INVALID_VALUE,
            "site_id",
            "report.v1",
        ),
        (
            FeedbackKind.APPEAL,
            raw({**APPEAL, "comment_id": 7}),
            InvalidCommentReason.WRONG_TYPE,
            "comment_id",
            "appeal.v1",
        ),
        (
            FeedbackKind.APPEAL,
            raw({**APPEAL, "schema": "moderation.report.v1"}),
            InvalidCommentReason.UNSUPPORTED_SCHEMA,
            "moderation.appeal.v1",
            "appeal.v1",
        ),
        (
            FeedbackKind.APPEAL,
            raw({**APPEAL, "reason": "x" * 2049}),
            InvalidCommentReason.INVALID_VALUE,
            "2048",
            "appeal.v1",
        ),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(
    kind: FeedbackKind,
    value: bytes,
    reason: InvalidCommentReason,
    needle: str,
    schema: str | None,
) -> None:
    with pytest.raises(InvalidComment) as caught:
        decode_feedback(kind, value, Limits(), NOW)

    assert caught.value.reason is reason
    assert needle in caught.value.detail
    if schema is not None:  # the published schema refuses it too
        assert not is_valid(schema, json.loads(value))


def test_appeals_of_one_comment_count_once_whoever_they_name() -> None:
    first = decode_feedback(FeedbackKind.APPEAL, raw(APPEAL), Limits(), NOW)
    other = decode_feedback(FeedbackKind.APPEAL, raw({**APPEAL, "author_id": "b"}), Limits(), NOW)

    assert first.actor_id == other.actor_id
