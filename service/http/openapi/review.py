"""The OpenAPI 3.1 document of the API, built from the same limits the parsers enforce."""

from __future__ import annotations

from typing import Any

from service.domain.model import Action, ModeratorReason, ReasonCode, SubScore
from service.domain.review import QueueOrder, ReviewStatus
from service.http import parse

Json = dict[str, Any]

ERROR_CODES = (
    "invalid_json",
    "invalid_request",
    "invalid_cursor",
    "invalid_decision",
    "unauthorized",
    "forbidden_site",
    "forbidden_role",
    "not_found",
    "method_not_allowed",
    "already_decided",
    "claimed_by_other",
    "body_too_large",
    "unavailable",
    "internal_error",
    "no_policy_file",
    "invalid_policy",
    "invalid_comment",
    "decision_pending",
)


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Json) -> Json:
    return {"oneOf": [schema, {"type": "null"}]}


def _string_or_null(**extra: Any) -> Json:
    return {"type": ["string", "null"], **extra}


def _time_or_null() -> Json:
    return {"type": ["string", "null"], "format": "date-time"}


def _object(properties: Json, required: list[str] | None = None) -> Json:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


SITE_ID: Json = {"type": "string", "pattern": parse.SITE_PATTERN}
COMMENT_ID: Json = {"type": "string", "pattern": parse.COMMENT_ID_PATTERN}
SCORE: Json = {"type": "number", "minimum": 0, "maximum": 1}

VERDICT: Json = {
    "action": {"type": "string", "enum": list(parse.DECISION_ACTIONS)},
    "reason": {
        "type": ["string", "null"],
        "enum": [*(r.value for r in ModeratorReason), None],
        "description": "why, in the moderator's words: it becomes the comment's training "
        "label (spam, abuse; an approval is ok whatever this says; off_topic, personal_info "
        "and other are not learned from). Left out or null: ok for approve; other for reject, "
        "and that label is recorded as guessed, not the moderator's, so retraining leaves it "
        "out. Send the reason the moderator chose, never one derived from the scores.",
    },
    "note": {"type": ["string", "null"], "maxLength": parse.MAX_NOTE},
}

SCHEMAS: Json = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string", "enum": list(ERROR_CODES)},
                    "message": {"type": "string"},
                }
            )
        }
    ),
    "Reason": _object({"code": {"type": "string"}, "detail": {"type": "string"}}),
    "Item": _object(
        {
            "site_id": SITE_ID,
            "comment_id": {"type": "string"},
            "text": {"type": "string", "description": "as received: untrusted, render as text"},
            "author": _object({"id": _string_or_null(), "name": _string_or_null()}),
            "thread_id": _string_or_null(),
            "created_at": _time_or_null(),
            "scores": _object(
                {"spam": SCORE, "abuse": SCORE} | {name.value: SCORE for name in SubScore},
                required=["spam", "abuse"],
            )
            | {"description": "the abuse sub-scores only when the model gives them"},
            "language": _nullable(
                _object(
                    {
                        "code": {"type": "string", "pattern": "^[a-z]{2,3}$"},
                        "detected": {"type": "boolean"},
                    }
                )
            )
            | {
                "description": "the comment's language: its event's lang (detected false) or "
                "the detector's (und: could not tell); null when neither was available"
            },
            "risk": {**SCORE, "description": "max(spam, abuse)"},
            "reasons": {"type": "array", "items": _ref("Reason")},
            "model_version": {"type": "string"},
            "policy_version": {"type": "string"},
            "queued_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": [s.value for s in ReviewStatus]},
            "claimed_by": _string_or_null(description="moderator id, while the lease runs"),
            "claim_expires_at": _time_or_null(),
            "decision": _string_or_null(enum=[*parse.DECISION_ACTIONS, None]),
            "decided_by": _string_or_null(),
            "decided_at": _time_or_null(),
            "decision_reason": _string_or_null(enum=[*(r.value for r in ModeratorReason), None]),
            "note": _string_or_null(),
            "report_weight": {
                "type": "number",
                "minimum": 0,
                "description": "summed reliability of the readers who reported it this round "
                "(claim with order=reports to take the most credible first)",
            },
        }
    ),
    "HistoryEntry": _object(
        {
            "comment_id": {"type": "string"},
            "text": {"type": "string"},
            "created_at": _time_or_null(),
            "action": {"type": "string", "enum": [a.value for a in Action]},
            "decided_by": {"type": "string"},
            "decided_at": {"type": "string", "format": "date-time"},
        }
    ),
    "AuditEntry": _object(
        {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "site_id": _string_or_null(),
            "comment_id": _string_or_null(),
            "detail": {"type": "string"},
        }
    ),
    "SiteStats": _object(
        {
            "site_id": SITE_ID,
            "depth": {"type": "integer", "minimum": 0},
            "claimed": {"type": "integer", "minimum": 0},
            "oldest_queued_at": _time_or_null(),
            "oldest_age_seconds": {"type": ["number", "null"], "minimum": 0},
        }
    ),
    "Verdict": _object(VERDICT, required=["action"]),
    "BulkDecision": _object(
        {"site_id": SITE_ID, "comment_id": COMMENT_ID, **VERDICT},
        required=["site_id", "comment_id", "action"],
    ),
    "BulkResult": _object(
        {
            "site_id": {"type": "string"},
            "comment_id": {"type": "string"},
            "ok": {"type": "boolean"},
            "item": _nullable(_ref("Item")),
            "error": _nullable(
                _object(
                    {
                        "code": {
                            "type": "string",
                            "enum": [
                                "not_found",
                                "already_decided",
                                "claimed_by_other",
                                "forbidden_site",
                                "invalid_decision",
                                "unavailable",
                            ],
                        },
                        "message": {"type": "string"},
                    }
                )
            ),
        }
    ),
}

_ERRORS: dict[int, str] = {
    400: "Invalid request: malformed JSON, a bad field or parameter, an unknown cursor",
    401: "No bearer token, or an unknown one",
    403: "The token does not grant this site, or this role",
    404: "No such item (or the feature is not enabled here)",
    409: "Already decided, or claimed by another moderator",
    413: "Request body too large",
    503: "The review store is unavailable, or a decision is still pending; retry",
}


def _ok(description: str, schema: Json) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: Json, *errors: int) -> Json:
    out: Json = {"200": ok}
    for status in errors:
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def _query(name: str, schema: Json, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _body(schema: Json) -> Json:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


SITE_QUERY = _query("site", SITE_ID, "only this site (default: every site the token grants)")
CURSOR_QUERY = _query(
    "cursor", {"type": "string", "pattern": parse.CURSOR_PATTERN}, "a next_cursor, as returned"
)
LIMIT_QUERY = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": parse.MAX_LIMIT, "default": parse.DEFAULT_LIMIT},
    "page size",
)
PATH_IDS = [
    {"name": "site_id", "in": "path", "required": True, "schema": SITE_ID},
    {"name": "comment_id", "in": "path", "required": True, "schema": COMMENT_ID},
]
PAGE_OF_ITEMS = _object(
    {
        "items": {"type": "array", "items": _ref("Item")},
        "next_cursor": _string_or_null(description="null on the last page"),
    }
)


def _paths() -> Json:
    api = "/api/v1"
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; needs no token",
                "security": [],
                "responses": _responses(
                    _ok("Alive", _object({"status": {"type": "string", "enum": ["ok"]}}))
                ),
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness of the dependencies; needs no token",
                "security": [],
                "responses": {
                    "200": _ok("Ready", {"$ref": "#/components/schemas/Readiness"}),
                    "503": _ok("Not ready", {"$ref": "#/components/schemas/Readiness"}),
                },
            }
        },
        f"{api}/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": _responses(_ok("OpenAPI 3.1 document", {"type": "object"}), 401),
            }
        },
        f"{api}/me": {
            "get": {
                "operationId": "me",
                "summary": "Who the token belongs to",
                "responses": _responses(
                    _ok(
                        "The caller",
                        _object(
                            {
                                "id": {"type": "string"},
                                "role": {"type": "string", "enum": ["moderator", "admin"]},
                                "sites": {
                                    "type": ["array", "null"],
                                    "items": SITE_ID,
                                    "description": "null: every site",
                                },
                            }
                        ),
                    ),
                    401,
                ),
            }
        },
        f"{api}/queue": {
            "get": {
                "operationId": "listQueue",
                "summary": "Pending items, oldest first, claimed ones included",
                "parameters": [
                    SITE_QUERY,
                    _query(
                        "reason",
                        {"type": "string", "enum": [c.value for c in ReasonCode]},
                        "items with a reason of this code",
                    ),
                    _query(
                        "older_than",
                        {"type": "integer", "minimum": 0, "maximum": parse.MAX_OLDER_THAN},
                        "queued at least this many seconds ago",
                    ),
                    CURSOR_QUERY,
                    LIMIT_QUERY,
                ],
                "responses": _responses(_ok("A page", PAGE_OF_ITEMS), 400, 401, 403, 503),
            }
        },
        f"{api}/queue/claim": {
            "post": {
                "operationId": "claim",
                "summary": "Claim up to `count` unclaimed items of a site for the lease time",
                "requestBody": _body(
                    _object(
                        {
                            "site_id": SITE_ID,
                            "count": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": parse.MAX_CLAIM,
                                "default": parse.DEFAULT_CLAIM,
                            },
                            "order": {
                                "type": "string",
                                "enum": [o.value for o in QueueOrder],
                                "default": QueueOrder.OLDEST.value,
                                "description": "oldest first; risk: highest score first; "
                                "reports: most credible reports first, then risk",
                            },
                        },
                        required=["site_id"],
                    )
                ),
                "responses": _responses(
                    _ok(
                        "The items now claimed by the caller",
                        _object({"items": {"type": "array", "items": _ref("Item")}}),
                    ),
                    400,
                    401,
                    403,
                    413,
                    503,
                ),
            }
        },
        f"{api}/queue/release": {
            "post": {
                "operationId": "release",
                "summary": "Give the caller's claims back to the queue",
                "requestBody": _body(
                    _object(
                        {
                            "site_id": SITE_ID,
                            "comment_ids": {
                                "type": "array",
                                "items": COMMENT_ID,
                                "minItems": 1,
                                "maxItems": parse.MAX_CLAIM,
                            },
                        }
                    )
                ),
                "responses": _responses(
                    _ok(
                        "The ids released (the others were not claimed by the caller)",
                        _object({"released": {"type": "array", "items": {"type": "string"}}}),
                    ),
                    400,
                    401,
                    403,
                    413,
                    503,
                ),
            }
        },
        f"{api}/items/{{site_id}}/{{comment_id}}": {
            "parameters": PATH_IDS,
            "get": {
                "operationId": "itemDetail",
                "summary": "An item with its scores and reasons, and the author's recent history",
                "responses": _responses(
                    _ok(
                        "The item",
                        _object(
                            {
                                "item": _ref("Item"),
                                "history": {"type": "array", "items": _ref("HistoryEntry")},
                            }
                        ),
                    ),
                    400,
                    401,
                    403,
                    404,
                    503,
                ),
            },
        },
        f"{api}/items/{{site_id}}/{{comment_id}}/decision": {
            "parameters": PATH_IDS,
            "post": {
                "operationId": "decide",
                "summary": "Approve or reject an item; publishes the final decision",
                "requestBody": _body(_ref("Verdict")),
                "responses": _responses(
                    _ok("The decided item", _object({"item": _ref("Item")})),
                    400,
                    401,
                    403,
                    404,
                    409,
                    413,
                    503,
                ),
            },
        },
        f"{api}/decisions": {
            "post": {
                "operationId": "decideMany",
                "summary": "Decide several items; each succeeds or fails on its own",
                "requestBody": _body(
                    _object(
                        {
                            "decisions": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": parse.MAX_BULK,
                                "items": _ref("BulkDecision"),
                            }
                        }
                    )
                ),
                "responses": _responses(
                    _ok(
                        "One result per decision, in order",
                        _object({"results": {"type": "array", "items": _ref("BulkResult")}}),
                    ),
                    400,
                    401,
                    413,
                    503,
                ),
            }
        },
        f"{api}/audit": {
            "get": {
                "operationId": "auditLog",
                "summary": "Claims, releases and decisions, newest first (admins only)",
                "parameters": [SITE_QUERY, CURSOR_QUERY, LIMIT_QUERY],
                "responses": _responses(
                    _ok(
                        "A page",
                        _object(
                            {
                                "entries": {"type": "array", "items": _ref("AuditEntry")},
                                "next_cursor": _string_or_null(),
                            }
                        ),
                    ),
                    400,
                    401,
                    403,
                    503,
                ),
            }
        },
        f"{api}/moderate": {
            "post": {
                "operationId": "moderate",
                "summary": "Decide one comment now (site or admin token). The body is a comment "
                "event (schema moderation.comment.v1), the answer its decision event "
                "(moderation.decision.v1), also published to comment-decisions. Asking again "
                "for the same (site_id, id) returns the first decision.",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["id", "site_id", "text"],
                        "properties": {
                            "id": COMMENT_ID,
                            "site_id": SITE_ID,
                            "text": {"type": "string", "maxLength": 20000},
                        },
                    }
                ),
                "responses": _responses(
                    _ok(
                        "The decision event",
                        {
                            "type": "object",
                            "required": ["event_id", "comment_id", "site_id", "action", "final"],
                            "properties": {
                                "event_id": {"type": "string"},
                                "comment_id": {"type": "string"},
                                "site_id": {"type": "string"},
                                "action": {
                                    "type": "string",
                                    "enum": ["approve", "reject", "review"],
                                },
                                "final": {"type": "boolean"},
                            },
                        },
                    ),
                    400,
                    401,
                    403,
                    404,
                    413,
                    503,
                ),
            }
        },
        f"{api}/admin/policy/reload": {
            "post": {
                "operationId": "reloadPolicy",
                "summary": "Read the policy file again (admins only); the change is audited",
                "requestBody": _body(_object({})),
                "responses": _responses(
                    _ok(
                        "The policy now in force",
                        _object(
                            {
                                "before": {"type": "string"},
                                "after": {"type": "string"},
                                "changes": {"type": "string"},
                            }
                        ),
                    ),
                    400,
                    401,
                    403,
                    409,
                    413,
                    503,
                ),
            }
        },
        f"{api}/stats": {
            "get": {
                "operationId": "queueStats",
                "summary": "Queue depth and oldest age per site",
                "parameters": [SITE_QUERY],
                "responses": _responses(
                    _ok(
                        "Per site",
                        _object({"sites": {"type": "array", "items": _ref("SiteStats")}}),
                    ),
                    400,
                    401,
                    403,
                    503,
                ),
            }
        },
    }


def document() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Comment moderation: review API",
            "version": "1.0.0",
            "description": "Moderators work the review queue. Every route needs a bearer token "
            "except /healthz and /readyz. Errors are "
            '{"error": {"code": "<stable code>", "message": "..."}}.',
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **SCHEMAS,
                "Readiness": _object(
                    {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "checks": {
                            "type": "object",
                            "additionalProperties": {"type": "boolean"},
                        },
                    }
                ),
            },
            "responses": {
                f"E{status}": _ok(description, _ref("Error"))
                for status, description in _ERRORS.items()
            },
        },
    }
