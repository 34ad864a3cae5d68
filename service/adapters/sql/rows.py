"""Rows and values of the SQL store: the comment row it writes, the items and marks it reads
back, times in milliseconds, cursors, and NUL kept out of text."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from service.adapters.sql.dialects import Row
from service.domain.authors import (
    AuthorMark,
    AuthorStatus,
)
from service.domain.errors import InvalidCursor
from service.domain.model import (
    Action,
    Language,
    ModeratorReason,
    Reason,
    ReasonCode,
    Scores,
    SubScore,
)
from service.domain.review import (
    ReviewItem,
    ReviewStatus,
    StoredComment,
)

MAX_FLAGS: Final = 20  # reasons kept from one round's reports (the count is in the weight)

ITEM_COLUMNS: Final = (
    "site_id, comment_id, text, author_id, author_name, thread_id, created_at_ms, spam, abuse, "
    "reasons, model_version, policy_version, queued_at_ms, status, claimed_by, "
    "claim_expires_at_ms, decision, decided_by, decided_at_ms, decision_reason, note, flags, "
    "report_weight, sub_scores, language, language_detected, parent_id, thread_url, "
    "thread_title, auto_action"
)


JSON_ENCODER: Final = msgspec.json.Encoder()
SUB_SCORE_FIELDS: Final = tuple(name.value for name in SubScore)  # = the `Scores` fields

INSERT_COMMENT: Final = (
    "INSERT INTO comments (site_id, comment_id, text, author_id, author_name, thread_id, "
    "created_at_ms, spam, abuse, risk, reasons, reason_codes, model_version, policy_version, "
    "auto_action, auto_decided_at_ms, event_json, status, queued_at_ms, text_hash, "
    "campaign_author, sub_scores, language, language_detected, parent_id, thread_url, "
    "thread_title, flags, spot_check) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (site_id, comment_id) DO NOTHING"
)


def comment_row(c: StoredComment) -> tuple[Any, ...]:
    # a spot check joins the queue with its reason among the round's (as a report's does)
    spot = c.spot_check
    queued = (c.action is Action.REVIEW and c.queued) or spot is not None
    codes = [r.code.value for r in c.reasons] + ([spot.code.value] if spot else [])
    decided_ms = to_ms(c.decided_at)
    return (
        c.site_id,
        c.comment_id,
        clean_text(c.text),
        clean_text(c.author_id),
        clean_text(c.author_name),
        clean_text(c.thread_id),
        to_ms(c.created_at) if c.created_at else None,
        c.scores.spam,
        c.scores.abuse,
        max(c.scores.spam, c.scores.abuse),
        json_text([{"code": r.code.value, "detail": r.detail} for r in c.reasons]),
        "," + ",".join(codes) + ",",
        c.model_version,
        c.policy_version,
        c.action.value,
        decided_ms,
        c.event_json,
        ReviewStatus.PENDING.value if queued else None,
        decided_ms if queued else None,
        c.text_hash,
        c.campaign_author,
        sub_scores_json(c.scores),
        None if c.language is None else c.language.code,
        None if c.language is None else int(c.language.detected),
        clean_text(c.parent_id),
        clean_text(c.thread_url),
        clean_text(c.thread_title),
        None if spot is None else json_text([{"code": spot.code.value, "detail": spot.detail}]),
        int(spot is not None),
    )


def json_text(value: object) -> str:
    """Compact JSON for a TEXT column (read back with `json.loads`)."""
    return JSON_ENCODER.encode(value).decode()


def sub_scores_json(scores: Scores) -> str | None:
    given = {n: v for n in SUB_SCORE_FIELDS if (v := getattr(scores, n)) is not None}
    return json_text(given) if given else None


def scores_of(spam: float, abuse: float, sub_scores: str | None) -> Scores:
    subs = {SubScore(k).value: float(v) for k, v in json.loads(sub_scores or "{}").items()}
    return Scores(spam=float(spam), abuse=float(abuse), **subs)


def row_language(code: str | None, detected: int | None) -> Language | None:
    return None if code is None else Language(code, detected=bool(detected))


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def from_ms_required(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def reason_code(code: str) -> ReasonCode | ModeratorReason:
    try:
        return ReasonCode(code)
    except ValueError:
        return ModeratorReason(code)


def reasons_of(raw: str | None) -> tuple[Reason, ...]:
    return tuple(Reason(reason_code(r["code"]), r["detail"]) for r in json.loads(raw or "[]"))


def item_of(row: Row) -> ReviewItem:
    # the automatic decision's reasons, then those the round's reports and appeals added
    reasons = reasons_of(row[9]) + reasons_of(row[21])
    return ReviewItem(
        site_id=row[0],
        comment_id=row[1],
        text=row[2],
        author_id=row[3],
        author_name=row[4],
        thread_id=row[5],
        created_at=from_ms(row[6]),
        scores=scores_of(row[7], row[8], row[23]),
        reasons=reasons,
        model_version=row[10],
        policy_version=row[11],
        queued_at=from_ms_required(row[12]),
        status=ReviewStatus(row[13]),
        claimed_by=row[14],
        claim_expires_at=from_ms(row[15]),
        decision=Action(row[16]) if row[16] else None,
        decided_by=row[17],
        decided_at=from_ms(row[18]),
        decision_reason=ModeratorReason(row[19]) if row[19] else None,
        note=row[20],
        report_weight=float(row[22] or 0.0),
        language=row_language(row[24], row[25]),
        parent_id=row[26],
        thread_url=row[27],
        thread_title=row[28],
        auto_action=Action(row[29]),
    )


MARK_COLUMNS: Final = "site_id, author_id, status, note, set_by, set_at_ms"


def mark_of(row: Row) -> AuthorMark:
    return AuthorMark(
        row[0], row[1], AuthorStatus(row[2]), row[3], row[4], from_ms_required(row[5])
    )


def clean_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; neither store keeps it, so both behave the same."""
    return None if value is None else value.replace("\x00", "\ufffd")


def like_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))
    ):
        raise InvalidCursor("the cursor is not one this API returned")
    return values


def in_clause(column: str, values: frozenset[str] | None) -> tuple[str, list[Any]]:
    if values is None:
        return "", []
    if not values:
        return " AND 1 = 0", []
    return f" AND {column} IN ({', '.join('?' * len(values))})", sorted(values)
