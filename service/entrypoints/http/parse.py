"""Request parsing: query strings, path parts and JSON bodies into typed values, or an
`ApiError` (400) saying what is wrong. The limits here are the ones `openapi.py` documents."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from aiohttp import web

from service.domain.model import Action, ModeratorReason, ReasonCode
from service.domain.review import QueueOrder
from service.entrypoints.http.errors import ApiError, invalid
from service.usecases.bulk_actions import BulkRequest
from service.usecases.review_service import DecisionRequest

SITE_PATTERN: Final = r"^[A-Za-z0-9._-]{1,128}$"
COMMENT_ID_PATTERN: Final = r"^[^\x00-\x1f\x7f]{1,256}$"
MAX_LIMIT: Final = 200
DEFAULT_LIMIT: Final = 50
MAX_OLDER_THAN: Final = 10 * 366 * 86_400
MAX_CURSOR: Final = 6000  # a cursor can hold a 256-character comment id, JSON-escaped
CURSOR_PATTERN: Final = rf"^[A-Za-z0-9_=-]{{1,{MAX_CURSOR}}}$"  # base64url
MAX_CLAIM: Final = 100
DEFAULT_CLAIM: Final = 10
MAX_BULK: Final = 100
MAX_NOTE: Final = 2000
DECISION_ACTIONS: Final = (Action.APPROVE.value, Action.REJECT.value)
DEFAULT_REASON: Final = {Action.APPROVE: ModeratorReason.OK, Action.REJECT: ModeratorReason.OTHER}

_SITE_RE: Final = re.compile(SITE_PATTERN)
_COMMENT_RE: Final = re.compile(COMMENT_ID_PATTERN)
_INT_RE: Final = re.compile(r"[0-9]{1,12}")
_CURSOR_RE: Final = re.compile(CURSOR_PATTERN)
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def site_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not _SITE_RE.fullmatch(value):
        raise invalid(f"{where} must be 1-128 characters of A-Z a-z 0-9 . _ -")
    return value


def comment_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not _COMMENT_RE.fullmatch(value):
        raise invalid(f"{where} must be 1-256 characters without control characters")
    return value


def _query_int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _INT_RE.fullmatch(raw) or not low <= int(raw) <= high:
        raise invalid(f"query parameter {name!r} must be a whole number from {low} to {high}")
    return int(raw)


def query(request: web.Request, allowed: frozenset[str]) -> Mapping[str, str]:
    """The query string, refused if it names a parameter the route does not take, or one
    twice."""
    q = request.query
    for name in q:
        if name not in allowed:
            raise invalid(f"unknown query parameter {name[:64]!r}")
        if len(q.getall(name)) > 1:
            raise invalid(f"query parameter {name[:64]!r} is given more than once")
    return q


NO_QUERY: Final = frozenset[str]()
QUEUE_QUERY: Final = frozenset({"site", "reason", "older_than", "cursor", "limit"})
AUDIT_QUERY: Final = frozenset({"site", "cursor", "limit"})
STATS_QUERY: Final = frozenset({"site"})


def query_site(query: Mapping[str, str]) -> str | None:
    raw = query.get("site")
    return None if raw is None else site_id(raw, "query parameter 'site'")


def query_limit(query: Mapping[str, str]) -> int:
    return _query_int(query, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT


def query_cursor(query: Mapping[str, str]) -> str | None:
    raw = query.get("cursor")
    if raw is not None and not _CURSOR_RE.fullmatch(raw):
        raise invalid("query parameter 'cursor' must be a next_cursor this API returned")
    return raw


def query_older_than(query: Mapping[str, str]) -> timedelta | None:
    seconds = _query_int(query, "older_than", 0, MAX_OLDER_THAN)
    return None if seconds is None else timedelta(seconds=seconds)


def query_reason(query: Mapping[str, str]) -> str | None:
    raw = query.get("reason")
    if raw is not None and raw not in {c.value for c in ReasonCode}:
        raise invalid("query parameter 'reason' must be one of the automatic reason codes")
    return raw


def _encodable(doc: object) -> bool:
    """False if a string in `doc` holds a lone surrogate (JSON lets `"\\ud800"` through; no
    store or UTF-8 encoder takes it)."""
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_document(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or a 400 `invalid_json` saying why not."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the request body is not valid UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(doc):
        raise ApiError(400, "invalid_json", "the request body holds an unpaired surrogate")
    return doc


async def json_object(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    """The body as a JSON object holding no field outside `fields`. Too large a body raises
    aiohttp's 413 before anything is parsed."""
    doc = json_document(await request.read())
    unknown = sorted(set(doc) - fields)
    if unknown:
        raise invalid(f"unknown field {unknown[0][:64]!r}")
    return doc


def _int_field(doc: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"field {name!r} must be a whole number from {low} to {high}")
    return value


def _choice(doc: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = doc.get(name, default)
    if value not in allowed:
        raise invalid(f"field {name!r} must be one of {', '.join(allowed)}")
    return str(value)


CLAIM_FIELDS: Final = frozenset({"site_id", "count", "order"})


def claim(doc: Mapping[str, Any]) -> tuple[str, int, QueueOrder]:
    site = site_id(doc.get("site_id"), "field 'site_id'")
    count = _int_field(doc, "count", 1, MAX_CLAIM, DEFAULT_CLAIM)
    order = _choice(doc, "order", tuple(o.value for o in QueueOrder), QueueOrder.OLDEST.value)
    return site, count, QueueOrder(order)


RELEASE_FIELDS: Final = frozenset({"site_id", "comment_ids"})


def release(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    site = site_id(doc.get("site_id"), "field 'site_id'")
    ids = doc.get("comment_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_CLAIM:
        raise invalid(f"field 'comment_ids' must be a list of 1-{MAX_CLAIM} comment ids")
    return site, [comment_id(i, "each of 'comment_ids'") for i in ids]


VERDICT_FIELDS: Final = frozenset({"action", "reason", "note"})
BULK_ITEM_FIELDS: Final = VERDICT_FIELDS | {"site_id", "comment_id"}


def verdict(doc: Mapping[str, Any], site: str, comment: str) -> DecisionRequest:
    action = Action(_choice(doc, "action", DECISION_ACTIONS, ""))
    reason_raw = doc.get("reason")
    if reason_raw is None:
        reason = DEFAULT_REASON[action]
    else:
        reason = ModeratorReason(
            _choice(doc, "reason", tuple(r.value for r in ModeratorReason), "")
        )
    note = doc.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise invalid(f"field 'note' must be a string of at most {MAX_NOTE} characters, or null")
    return DecisionRequest(site, comment, action, reason, note, reason_given=reason_raw is not None)


BULK_FIELDS: Final = frozenset({"decisions"})


def bulk(doc: Mapping[str, Any]) -> list[DecisionRequest]:
    items = doc.get("decisions")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
        raise invalid(f"field 'decisions' must be a list of 1-{MAX_BULK} decisions")
    out = []
    for index, item in enumerate(items):
        where = f"decisions[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object")
        unknown = sorted(set(item) - BULK_ITEM_FIELDS)
        if unknown:
            raise invalid(f"{where}: unknown field {unknown[0][:64]!r}")
        site = site_id(item.get("site_id"), f"{where}.site_id")
        comment = comment_id(item.get("comment_id"), f"{where}.comment_id")
        out.append(verdict(item, site, comment))
    return out


BULK_ACTION_FIELDS: Final = VERDICT_FIELDS | {"site_id", "comment_ids"}
BULK_ACTION_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
BULK_ACTIONS_QUERY: Final = frozenset({"site"})
_BULK_ACTION_ID_RE: Final = re.compile(BULK_ACTION_ID_PATTERN)


def bulk_action(doc: Mapping[str, Any]) -> BulkRequest:
    site = site_id(doc.get("site_id"), "field 'site_id'")
    ids = doc.get("comment_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BULK:
        raise invalid(f"field 'comment_ids' must be a list of 1-{MAX_BULK} comment ids")
    comments = tuple(comment_id(i, "each of 'comment_ids'") for i in ids)
    if len(set(comments)) != len(comments):
        raise invalid("field 'comment_ids' names a comment twice")
    one = verdict(doc, site, comments[0])
    return BulkRequest(site, comments, one.action, one.reason, one.note, one.reason_given)


def bulk_action_id(value: str) -> str:
    if not _BULK_ACTION_ID_RE.fullmatch(value):
        raise invalid("path parameter 'action_id' must be 32 lowercase hex digits")
    return value
