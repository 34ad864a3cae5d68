"""The API's error body, `{"error": {"code": "<stable code>", "message": "..."}}`, and the
shared error responses of the document (`E<status>`)."""

from __future__ import annotations

from service.entrypoints.http.openapi.shapes import Json, closed, enum, ok, ref

# The stable codes of the error body; tests/unit/entrypoints/http/test_openapi.py checks that
# every code the HTTP layer raises is here.
ERROR_CODES = (
    "invalid_json",
    "invalid_request",
    "invalid_cursor",
    "invalid_decision",
    "invalid_comment",
    "invalid_policy",
    "invalid_signature",
    "unauthorized",
    "forbidden",
    "forbidden_site",
    "forbidden_role",
    "not_found",
    "method_not_allowed",
    "already_decided",
    "claimed_by_other",
    "in_bulk_action",
    "already_applied",
    "already_undone",
    "undo_window_closed",
    "no_policy_file",
    "body_too_large",
    "unsupported_media_type",
    "unavailable",
    "decision_pending",
    "internal_error",
    "http_error",
)

SCHEMAS: Json = {
    "Error": closed({"error": closed({"code": enum(ERROR_CODES), "message": {"type": "string"}})})
}

ERRORS: dict[int, str] = {
    400: "Invalid request: malformed JSON, a bad field or parameter, an unknown cursor",
    401: "No bearer token, or an unknown one",
    403: "The token does not grant this site, or this role",
    404: "No such item (or the feature is not enabled here)",
    409: "Already decided, claimed by another moderator, in a pending bulk action; a bulk "
    "action already applied or undone, or past its undo window",
    413: "Request body too large",
    503: "The review store is unavailable, or a decision is still pending; retry",
}


def responses() -> Json:
    return {f"E{status}": ok(description, ref("Error")) for status, description in ERRORS.items()}
