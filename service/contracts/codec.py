"""Bytes <-> events: the versioned JSON contracts of `service/contracts/schemas/`.

Parsing is strict about what the contract names and lenient about what it does not:
unknown fields are kept. Every failure is an `InvalidComment` with a precise reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from service.domain.errors import InvalidComment
from service.domain.errors import InvalidCommentReason as R
from service.domain.feedback import Feedback, FeedbackKind
from service.domain.model import Author, Comment, Decision, SubScore

COMMENT_SCHEMA: Final = "moderation.comment.v1"
DECISION_SCHEMA: Final = "moderation.decision.v1"
DEAD_LETTER_SCHEMA: Final = "moderation.dead-letter.v1"
REPORT_SCHEMA: Final = "moderation.report.v1"
APPEAL_SCHEMA: Final = "moderation.appeal.v1"
# the JSON Schema of each, `<name without "moderation.">.json` (shipped as package data)
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schemas"

# Auto decisions get a name-based id: a replayed batch re-creates the same event_id, so a
# consumer that dedupes by event_id is safe even outside read_committed.
_EVENT_NAMESPACE: Final = uuid.UUID("6f1c1d1e-6b5e-4c8e-9d38-4f0f3b5a2c11")
_NAMESPACE_BYTES: Final = _EVENT_NAMESPACE.bytes
_SUB_SCORE_FIELDS: Final = tuple(name.value for name in SubScore)  # = the `Scores` fields
_ENCODER: Final = msgspec.json.Encoder()

_ID_RE: Final = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
_SITE_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ID_RULE: Final = "1 to 256 characters without control characters"
_SITE_RULE: Final = "1 to 128 characters of A-Z a-z 0-9 . _ -"
_KNOWN: Final = frozenset(
    {
        *("schema", "id", "site_id", "text", "thread_id", "parent_id", "author", "created_at"),
        *("lang", "thread_url", "thread_title"),
    }
)
_AUTHOR_FIELDS: Final = ("id", "name", "email", "url", "ip", "user_agent")
_MAX_OPTIONAL_CHARS: Final = 2048
MAX_THREAD_TITLE_CHARS: Final = 512
# An absolute http(s) URL with a host and no user part (`https://news.example@evil.test`
# deceives; so does a backslash in the host, which browsers read as `/`), no whitespace or
# control characters anywhere. The schema file's pattern is the
# same. Anything else (`javascript:`, `data:`, a relative path) is refused: it would be a link.
_HTTP_URL: Final = re.compile(
    r"[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@\\\x00-\x1f\x7f]+([/?#][^\s\x00-\x1f\x7f]*)?"
)
HTTP_URL_RULE: Final = "an absolute http or https URL without spaces or a user part"
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
# RFC 3339 needs a date, a time and an offset (Z or +hh:mm); ASCII digits only.
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

Header = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = 20_000
    max_message_bytes: int = 1_000_000


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _string(doc: Mapping[str, Any], name: str, *, required: bool, where: str = "") -> str | None:
    path = f"{where}{name}"
    if name not in doc or (not required and doc[name] is None):
        if required:
            raise InvalidComment(R.MISSING_FIELD, f"required field '{path}' is missing")
        return None
    value = doc[name]
    if not isinstance(value, str):
        raise InvalidComment(
            R.WRONG_TYPE, f"field '{path}' must be a string, got {_type_name(value)}"
        )
    return value


def _checked_id(value: str, name: str, pattern: re.Pattern[str], rule: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidComment(R.INVALID_VALUE, f"field '{name}' must be {rule}")
    return value


def _optional_short(doc: Mapping[str, Any], name: str, where: str = "") -> str | None:
    value = _string(doc, name, required=False, where=where)
    if value is not None and len(value) > _MAX_OPTIONAL_CHARS:
        raise InvalidComment(
            R.INVALID_VALUE, f"field '{where}{name}' is longer than {_MAX_OPTIONAL_CHARS} chars"
        )
    return value


def is_http_url(value: str) -> bool:
    """Whether `value` may be shown as a link: see `_HTTP_URL`."""
    return len(value) <= _MAX_OPTIONAL_CHARS and _HTTP_URL.fullmatch(value) is not None


def _thread_url(doc: Mapping[str, Any]) -> str | None:
    value = _optional_short(doc, "thread_url")
    if value is not None and not is_http_url(value):
        raise InvalidComment(R.INVALID_VALUE, f"field 'thread_url' must be {HTTP_URL_RULE}")
    return value


def _thread_title(doc: Mapping[str, Any]) -> str | None:
    value = _string(doc, "thread_title", required=False)
    if value is not None and len(value) > MAX_THREAD_TITLE_CHARS:
        raise InvalidComment(
            R.INVALID_VALUE, f"field 'thread_title' is longer than {MAX_THREAD_TITLE_CHARS} chars"
        )
    return value


def _timestamp(value: str) -> datetime:
    if not _RFC3339.fullmatch(value):
        raise InvalidComment(
            R.INVALID_TIMESTAMP, f"field 'created_at' is not an RFC 3339 timestamp: {value[:40]!r}"
        )
    text = value.replace("z", "Z").replace("Z", "+00:00")
    fraction = re.search(r"\.([0-9]+)", text)
    if fraction and len(fraction.group(1)) > 6:  # Python keeps microseconds
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        moment = datetime.fromisoformat(text)
        # Stored and shown in UTC: an offset that pushes it out of years 1-9999 cannot be.
        datetime.fromtimestamp(moment.timestamp(), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidComment(
            R.INVALID_TIMESTAMP, f"field 'created_at' is not a valid date/time: {exc}"
        ) from exc
    return moment


def _author(doc: Mapping[str, Any]) -> Author:
    raw = doc.get("author")
    if raw is None:
        return Author()
    if not isinstance(raw, dict):
        raise InvalidComment(
            R.WRONG_TYPE, f"field 'author' must be an object, got {_type_name(raw)}"
        )
    values = {name: _optional_short(raw, name, where="author.") for name in _AUTHOR_FIELDS}
    return Author(**values)


def decode_comment(value: bytes | None, limits: Limits) -> Comment:
    """Parse one `comments` record value, or raise `InvalidComment` saying why not.

    An event made of the contract's fields only, every one valid, is read in one pass by a
    typed decoder (`_fast_comment`); any other (unknown fields, a wrong type, invalid JSON
    or UTF-8, a value that breaks a rule) is read again field by field, which keeps unknown
    fields and says exactly what is wrong: both give the same `Comment` for the same bytes."""
    comment = _fast_comment(value, limits)
    return comment if comment is not None else decode_comment_by_field(value, limits)


def decode_comment_by_field(value: bytes | None, limits: Limits) -> Comment:
    """`decode_comment` without the typed decoder: the reference it must agree with."""
    return comment_from_mapping(_json_object(value, limits, "a comment event"), limits)


class _AuthorFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str | None = None
    name: str | None = None
    email: str | None = None
    url: str | None = None
    ip: str | None = None
    user_agent: str | None = None


class _CommentFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The contract's fields (see `_KNOWN`), typed; a field of any other name is an error."""

    schema: str = COMMENT_SCHEMA
    id: str
    site_id: str
    text: str
    thread_id: str | None = None
    parent_id: str | None = None
    author: _AuthorFields | None = None
    created_at: str | None = None
    lang: str | None = None
    thread_url: str | None = None
    thread_title: str | None = None


_COMMENT_FIELDS: Final = msgspec.json.Decoder(_CommentFields)


def _fast_comment(value: bytes | None, limits: Limits) -> Comment | None:
    """The comment, if the typed decoder reads it and every rule holds; None for anything
    else, which `decode_comment_by_field` then reads (and refuses with the reason)."""
    if value is None or len(value) > limits.max_message_bytes:
        return None
    try:
        doc = _COMMENT_FIELDS.decode(value)
    except msgspec.DecodeError:  # invalid JSON or UTF-8, a wrong type, an unknown field,
        return None  # an escaped lone surrogate (an escaped pair is one character, as in json)
    raw = doc.author
    author = (
        Author()
        if raw is None
        else Author(raw.id, raw.name, raw.email, raw.url, raw.ip, raw.user_agent)
    )
    if not _rules_hold(doc, author, limits):
        return None
    try:
        created = None if doc.created_at is None else _timestamp(doc.created_at)
    except InvalidComment:
        return None
    return Comment(
        id=doc.id,
        site_id=doc.site_id,
        text=doc.text,
        thread_id=doc.thread_id,
        parent_id=doc.parent_id,
        author=author,
        created_at=created,
        lang=doc.lang,
        thread_url=doc.thread_url,
        thread_title=doc.thread_title,
    )


def _rules_hold(doc: _CommentFields, author: Author, limits: Limits) -> bool:
    """What `comment_from_mapping` checks beyond the types (but the timestamp)."""
    shorts = (
        *(doc.thread_id, doc.parent_id, doc.lang, doc.thread_url),
        *(author.id, author.name, author.email, author.url, author.ip, author.user_agent),
    )
    return (
        doc.schema == COMMENT_SCHEMA
        and len(doc.text) <= limits.max_text_chars
        and _ID_RE.fullmatch(doc.id) is not None
        and _SITE_RE.fullmatch(doc.site_id) is not None
        and all(s is None or len(s) <= _MAX_OPTIONAL_CHARS for s in shorts)
        and (doc.thread_url is None or is_http_url(doc.thread_url))
        and (doc.thread_title is None or len(doc.thread_title) <= MAX_THREAD_TITLE_CHARS)
    )


def _json_object(value: bytes | None, limits: Limits, what: str) -> dict[str, Any]:
    if value is None:
        raise InvalidComment(R.INVALID_JSON, "record has no value (tombstone)")
    if len(value) > limits.max_message_bytes:
        raise InvalidComment(
            R.TOO_LARGE, f"record is {len(value)} bytes, limit {limits.max_message_bytes}"
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidComment(
            R.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}: {exc.reason}"
        ) from exc
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise InvalidComment(R.INVALID_JSON, "JSON nested too deeply") from exc
    except ValueError as exc:
        raise InvalidComment(R.INVALID_JSON, f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidComment(R.NOT_AN_OBJECT, f"{what} is a JSON object, got {_type_name(doc)}")
    if _SURROGATE_ESCAPE.search(text):
        # Escaped lone surrogates ("\\ud800") parse, but cannot be encoded again.
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidComment(R.INVALID_VALUE, "a string holds an unpaired surrogate") from exc
    return doc


_FEEDBACK_ACTOR: Final = {FeedbackKind.REPORT: "reporter_id", FeedbackKind.APPEAL: "author_id"}
_FEEDBACK_SCHEMA: Final = {FeedbackKind.REPORT: REPORT_SCHEMA, FeedbackKind.APPEAL: APPEAL_SCHEMA}


def decode_feedback(
    kind: FeedbackKind, value: bytes | None, limits: Limits, received_at: datetime
) -> Feedback:
    """Parse one `comment-reports` or `comment-appeals` record value (see the schemas), or
    raise `InvalidComment` saying why not. A report must name its reporter; an appeal may
    name the author."""
    doc = _json_object(value, limits, f"a {kind.value} event")
    schema = doc.get("schema", _FEEDBACK_SCHEMA[kind])
    if schema != _FEEDBACK_SCHEMA[kind]:
        raise InvalidComment(
            R.UNSUPPORTED_SCHEMA, f"schema {str(schema)[:60]!r} is not {_FEEDBACK_SCHEMA[kind]!r}"
        )
    comment_id = _checked_id(
        _string(doc, "comment_id", required=True) or "", "comment_id", _ID_RE, _ID_RULE
    )
    site_id = _checked_id(
        _string(doc, "site_id", required=True) or "", "site_id", _SITE_RE, _SITE_RULE
    )
    actor_field = _FEEDBACK_ACTOR[kind]
    actor = _string(doc, actor_field, required=kind is FeedbackKind.REPORT)
    if actor is not None:
        _checked_id(actor, actor_field, _ID_RE, _ID_RULE)
    reason = (_string(doc, "reason", required=True) or "").strip()
    if not reason or len(reason) > _MAX_OPTIONAL_CHARS:
        raise InvalidComment(
            R.INVALID_VALUE, f"field 'reason' must be 1 to {_MAX_OPTIONAL_CHARS} characters"
        )
    # A reader reports once per comment; a comment has one author, who appeals once: the
    # appeal's author_id is checked but does not make a second appeal a new one.
    actor_id = (actor or "") if kind is FeedbackKind.REPORT else ""
    return Feedback(kind, site_id, comment_id, actor_id, reason, received_at)


def comment_from_mapping(doc: Mapping[str, Any], limits: Limits) -> Comment:
    schema = doc.get("schema", COMMENT_SCHEMA)
    if schema != COMMENT_SCHEMA:
        raise InvalidComment(
            R.UNSUPPORTED_SCHEMA, f"schema {str(schema)[:60]!r} is not {COMMENT_SCHEMA!r}"
        )
    comment_id = _checked_id(_string(doc, "id", required=True) or "", "id", _ID_RE, _ID_RULE)
    site_id = _checked_id(
        _string(doc, "site_id", required=True) or "", "site_id", _SITE_RE, _SITE_RULE
    )
    text = _string(doc, "text", required=True) or ""
    if len(text) > limits.max_text_chars:
        raise InvalidComment(
            R.TEXT_TOO_LONG, f"text has {len(text)} characters, limit {limits.max_text_chars}"
        )
    created = _string(doc, "created_at", required=False)
    return Comment(
        id=comment_id,
        site_id=site_id,
        text=text,
        thread_id=_optional_short(doc, "thread_id"),
        parent_id=_optional_short(doc, "parent_id"),
        author=_author(doc),
        created_at=_timestamp(created) if created is not None else None,
        lang=_optional_short(doc, "lang"),
        thread_url=_thread_url(doc),
        thread_title=_thread_title(doc),
        extra={k: v for k, v in doc.items() if k not in _KNOWN},
    )


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def auto_event_id(site_id: str, comment_id: str) -> str:
    """`uuid.uuid5(_EVENT_NAMESPACE, f"auto\\x1f{site_id}\\x1f{comment_id}")` as a string,
    without building the UUID object."""
    name = f"auto\x1f{site_id}\x1f{comment_id}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def decision_document(decision: Decision, event_id: str, decided_at: datetime) -> dict[str, Any]:
    """The decision event (schema 1.1: the abuse sub-scores the model gives and the language
    are optional fields a 1.0 reader that ignores unknown fields never sees)."""
    given = decision.scores
    scores = {"spam": round(given.spam, 6), "abuse": round(given.abuse, 6)}
    for name in _SUB_SCORE_FIELDS:
        value = getattr(given, name)
        if value is not None:  # only those the model gives
            scores[name] = round(value, 6)
    doc: dict[str, Any] = {
        "schema": DECISION_SCHEMA,
        "event_id": event_id,
        "comment_id": decision.comment_id,
        "site_id": decision.site_id,
        "action": decision.action.value,
        "final": decision.final,
        "scores": scores,
        "reasons": [{"code": r.code.value, "detail": r.detail} for r in decision.reasons],
        "model_version": decision.model_version,
        "policy_version": decision.policy_version,
        "decided_by": decision.decided_by,
        "decided_at": rfc3339(decided_at),
    }
    if decision.language is not None:
        doc["language"] = {"code": decision.language.code, "detected": decision.language.detected}
    return doc


def _dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_decision(decision: Decision, event_id: str, decided_at: datetime) -> bytes:
    # msgspec writes the same JSON as `_dumps` but for the exponent of tiny floats (1e-6,
    # not 1e-06), which is the same number, in a tenth of the time
    return _ENCODER.encode(decision_document(decision, event_id, decided_at))


def decision_key(site_id: str, comment_id: str) -> bytes:
    return f"{site_id}:{comment_id}".encode()


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a record came from, as a DLQ entry names it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = ()


def unreadable_record(
    topic: str, partition: int, offset: int
) -> tuple[SourceRecord, InvalidComment]:
    """Where a record is that the client could not read (its header key is not UTF-8), and
    why: its dead letter can only point at it."""
    return SourceRecord(topic, partition, offset, None, None, None), InvalidComment(
        R.INVALID_UTF8,
        "a header key is not valid UTF-8, so the record cannot be read; its bytes are still "
        f"in {topic} partition {partition} at offset {offset}",
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def encode_dead_letter(
    source: SourceRecord, error: InvalidComment, failed_at: datetime
) -> tuple[bytes, list[Header]]:
    """The DLQ record: the reason in headers and body, the original bytes intact (base64)."""
    body = {
        "schema": DEAD_LETTER_SCHEMA,
        "reason": error.reason.value,
        "detail": error.detail,
        "failed_at": rfc3339(failed_at),
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
        },
        "key_base64": _b64(source.key),
        "value_base64": _b64(source.value),
    }
    headers = [
        *[(k, v) for k, v in source.headers if not k.startswith("moderation.")],
        ("moderation.error.reason", error.reason.value.encode()),
        ("moderation.error.detail", error.detail.encode("utf-8", "replace")[:1000]),
    ]
    return _dumps(body), headers
