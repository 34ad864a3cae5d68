"""The review API's part of the OpenAPI document: health, the queue, items, decisions, the
audit log, statistics and the policy reload."""

from __future__ import annotations

from service.domain.access import Role
from service.domain.model import ReasonCode
from service.domain.review import QueueOrder
from service.entrypoints.http import parse
from service.entrypoints.http.openapi.shapes import (
    COMMENT_ID,
    SITE_ID,
    Json,
    body,
    closed,
    enum,
    nullable,
    ok,
    query,
    ref,
    responses,
    string_or_null,
)

SITE_QUERY = query("site", SITE_ID, "only this site (default: every site the token grants)")
CURSOR_QUERY = query(
    "cursor", {"type": "string", "pattern": parse.CURSOR_PATTERN}, "a next_cursor, as returned"
)
LIMIT_QUERY = query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": parse.MAX_LIMIT, "default": parse.DEFAULT_LIMIT},
    "page size",
)
PATH_IDS = [
    {"name": "site_id", "in": "path", "required": True, "schema": SITE_ID},
    {"name": "comment_id", "in": "path", "required": True, "schema": COMMENT_ID},
]
PAGE_OF_ITEMS = closed(
    {
        "items": {"type": "array", "items": ref("Item")},
        "next_cursor": string_or_null(description="null on the last page"),
    }
)


def paths() -> Json:
    api = "/api/v1"
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; needs no token",
                "security": [],
                "responses": responses(
                    ok("Alive", closed({"status": {"type": "string", "enum": ["ok"]}}))
                ),
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness of the dependencies; needs no token",
                "security": [],
                "responses": {
                    "200": ok("Ready", ref("Readiness")),
                    "503": ok("Not ready", ref("Readiness")),
                },
            }
        },
        f"{api}/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": responses(ok("OpenAPI 3.1 document", {"type": "object"}), 401),
            }
        },
        f"{api}/me": {
            "get": {
                "operationId": "me",
                "summary": "Who the token belongs to",
                "responses": responses(
                    ok(
                        "The caller",
                        closed(
                            {
                                "id": {"type": "string"},
                                "role": enum(Role),
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
                    query(
                        "reason",
                        {"type": "string", "enum": [c.value for c in ReasonCode]},
                        "items with a reason of this code",
                    ),
                    query(
                        "older_than",
                        {"type": "integer", "minimum": 0, "maximum": parse.MAX_OLDER_THAN},
                        "queued at least this many seconds ago",
                    ),
                    CURSOR_QUERY,
                    LIMIT_QUERY,
                ],
                "responses": responses(ok("A page", PAGE_OF_ITEMS), 400, 401, 403, 503),
            }
        },
        f"{api}/queue/claim": {
            "post": {
                "operationId": "claim",
                "summary": "Claim up to `count` unclaimed items of a site for the lease time",
                "requestBody": body(
                    closed(
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
                "responses": responses(
                    ok(
                        "The items now claimed by the caller",
                        closed({"items": {"type": "array", "items": ref("Item")}}),
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
                "requestBody": body(
                    closed(
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
                "responses": responses(
                    ok(
                        "The ids released (the others were not claimed by the caller)",
                        closed({"released": {"type": "array", "items": {"type": "string"}}}),
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
                "summary": "An item with its scores and reasons, the comment it answers, and the "
                "author's recent history and counts",
                "responses": responses(
                    ok(
                        "The item",
                        closed(
                            {
                                "item": ref("Item"),
                                "history": {"type": "array", "items": ref("HistoryEntry")},
                                "author_status": nullable(ref("AuthorMark"))
                                | {"description": "the author trusted or blocked on the site"},
                                "parent": nullable(ref("ParentComment"))
                                | {
                                    "description": "the comment the item answers (its "
                                    "parent_id, same site); null: none, or not in the store"
                                },
                                "author_counts": nullable(ref("AuthorCounts"))
                                | {"description": "null for an anonymous comment"},
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
                "requestBody": body(ref("Verdict")),
                "responses": responses(
                    ok("The decided item", closed({"item": ref("Item")})),
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
                "requestBody": body(
                    closed(
                        {
                            "decisions": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": parse.MAX_BULK,
                                "items": ref("BulkDecision"),
                            }
                        }
                    )
                ),
                "responses": responses(
                    ok(
                        "One result per decision, in order",
                        closed({"results": {"type": "array", "items": ref("BulkResult")}}),
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
                "responses": responses(
                    ok(
                        "A page",
                        closed(
                            {
                                "entries": {"type": "array", "items": ref("AuditEntry")},
                                "next_cursor": string_or_null(),
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
        f"{api}/admin/policy/reload": {
            "post": {
                "operationId": "reloadPolicy",
                "summary": "Read the policy file again (admins only); the change is audited",
                "requestBody": body(closed({})),
                "responses": responses(
                    ok(
                        "The policy now in force",
                        closed(
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
                "responses": responses(
                    ok(
                        "Per site",
                        closed({"sites": {"type": "array", "items": ref("SiteStats")}}),
                    ),
                    400,
                    401,
                    403,
                    503,
                ),
            }
        },
        f"{api}/spot-checks": {
            "get": {
                "operationId": "spotChecks",
                "summary": "How often spot checks found automatic decisions wrong, per site",
                "description": "Per site and automatic action: the verdicts on spot checks, "
                "how many overturned it, how many wait, the share (`rate`) and its 95% Wilson "
                "score interval (`low`, `high`); these three are null before any verdict.",
                "parameters": [SITE_QUERY],
                "responses": responses(
                    ok(
                        "Per site and automatic action",
                        closed(
                            {
                                "spot_checks": {
                                    "type": "array",
                                    "items": ref("SpotCheckEstimate"),
                                }
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
    }
