"""The API's error bodies: `{"error": {"code": "<stable code>", "message": "..."}}`; on the
Perspective-compatible routes Google's: `{"error": {"code": 400, "message": "...",
"status": "INVALID_ARGUMENT"}}`.

Domain errors know nothing of HTTP; these tables are where they meet a status."""

from __future__ import annotations

import math
from typing import Final

from aiohttp import web

from service.domain.authors import NoAuthorStatus
from service.domain.bulk import BulkActionClosed, BulkActionNotFound, BulkStatus, InBulkAction
from service.domain.errors import (
    AlreadyDecided,
    ClaimedByOther,
    InvalidComment,
    InvalidCursor,
    InvalidPolicy,
    ModerationError,
    ReviewNotFound,
    StoreFailed,
    StoreUnavailable,
)
from service.domain.review import InvalidModeratorDecision
from service.usecases.perspective.protocol import ErrorKind, PerspectiveError
from service.usecases.policy_control import NoPolicyFile
from service.usecases.review_service import AccessDenied


class ApiError(Exception):
    """A request the HTTP layer itself refuses (bad JSON, a missing field, no token)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


# Codes for statuses aiohttp raises itself (routing, body size).
HTTP_CODES: Final = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

_DOMAIN: Final[tuple[tuple[type[ModerationError], int, str], ...]] = (
    (ReviewNotFound, 404, "not_found"),
    (BulkActionNotFound, 404, "not_found"),
    (InBulkAction, 409, "in_bulk_action"),
    (NoAuthorStatus, 404, "not_found"),
    (AlreadyDecided, 409, "already_decided"),
    (ClaimedByOther, 409, "claimed_by_other"),
    (InvalidComment, 400, "invalid_comment"),  # "<reason>: <detail>", as the DLQ says it
    (InvalidCursor, 400, "invalid_cursor"),
    (InvalidModeratorDecision, 400, "invalid_decision"),
    (StoreUnavailable, 503, "unavailable"),
    (StoreFailed, 503, "unavailable"),
    (NoPolicyFile, 409, "no_policy_file"),
    (InvalidPolicy, 400, "invalid_policy"),
)


def from_domain(exc: ModerationError) -> ApiError | None:
    if isinstance(exc, AccessDenied):
        return ApiError(403, exc.code, str(exc))
    if isinstance(exc, BulkActionClosed):
        if exc.status is BulkStatus.APPLIED:
            return ApiError(409, "already_applied", str(exc))
        if exc.status is BulkStatus.UNDONE:
            return ApiError(409, "already_undone", str(exc))
        return ApiError(409, "undo_window_closed", str(exc))
    for kind, status, code in _DOMAIN:
        if isinstance(exc, kind):
            message = "the review store is unavailable, retry" if status == 503 else str(exc)
            return ApiError(status, code, message)
    return None


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


# Google's canonical status for each HTTP status we answer with on the Perspective routes.
GOOGLE_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_KIND_STATUS: Final = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.DEADLINE_EXCEEDED: 504,
}


def google_error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}
    return web.json_response({"error": body}, status=status, headers=headers)


def perspective_error_response(exc: PerspectiveError) -> web.Response:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return google_error_response(_KIND_STATUS[exc.kind], exc.message, headers)
