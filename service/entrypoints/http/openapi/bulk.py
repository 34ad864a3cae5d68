"""The bulk actions' part of the OpenAPI document: a verdict on several items held for an
undo window (MODERATION_UNDO_SECONDS), then applied in one transaction."""

from __future__ import annotations

from service.domain.bulk import BulkStatus, ItemOutcome
from service.domain.model import ModeratorReason
from service.entrypoints.http import parse
from service.entrypoints.http.openapi.review_schemas import VERDICT
from service.entrypoints.http.openapi.shapes import (
    COMMENT_ID,
    SITE_ID,
    Json,
    body,
    closed,
    enum,
    ok,
    query,
    ref,
    responses,
    string_or_null,
    time_or_null,
)

UNDO_SECONDS: Json = {
    "type": "number",
    "minimum": 1,
    "description": "the undo window of new bulk actions (MODERATION_UNDO_SECONDS)",
}

SCHEMAS: Json = {
    "BulkActionRequest": closed(
        {
            "site_id": SITE_ID,
            "comment_ids": {
                "type": "array",
                "items": COMMENT_ID,
                "minItems": 1,
                "maxItems": parse.MAX_BULK,
                "uniqueItems": True,
            },
            **VERDICT,
        },
        required=["site_id", "comment_ids", "action"],
    ),
    "BulkAction": closed(
        {
            "id": {"type": "string", "pattern": parse.BULK_ACTION_ID_PATTERN},
            "site_id": SITE_ID,
            "moderator_id": {"type": "string"},
            "action": {"type": "string", "enum": list(parse.DECISION_ACTIONS)},
            "reason": enum(ModeratorReason),
            "note": string_or_null(),
            "status": enum(BulkStatus)
            | {
                "description": "pending: inside the undo window (nothing decided or published, "
                "the items claimed by the moderator); applied: decided and published in one "
                "transaction; undone: audited, never published"
            },
            "items": {
                "type": "array",
                "items": closed(
                    {
                        "comment_id": {"type": "string"},
                        "outcome": string_or_null(enum=[*(o.value for o in ItemOutcome), None])
                        | {
                            "description": "null until applied; an item decided meanwhile is "
                            "skipped"
                        },
                    }
                ),
            },
            "created_at": {"type": "string", "format": "date-time"},
            "apply_at": {"type": "string", "format": "date-time"},
            "finished_at": time_or_null(),
        }
    ),
}

ACTION_ID = [
    {
        "name": "action_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": parse.BULK_ACTION_ID_PATTERN},
    }
]
ONE = closed({"bulk_action": ref("BulkAction")})


def paths() -> Json:
    api = "/api/v1"
    return {
        f"{api}/bulk-actions": {
            "post": {
                "operationId": "createBulkAction",
                "summary": "Approve or reject several items of a site in one action, applied "
                "after the undo window unless undone; all or nothing",
                "requestBody": body(ref("BulkActionRequest")),
                "responses": responses(
                    ok(
                        "The pending action",
                        closed({"bulk_action": ref("BulkAction"), "undo_seconds": UNDO_SECONDS}),
                    ),
                    400,
                    401,
                    403,
                    404,
                    409,
                    413,
                    503,
                ),
            },
            "get": {
                "operationId": "listBulkActions",
                "summary": "The caller's pending bulk actions, oldest first",
                "parameters": [query("site", SITE_ID, "only this site")],
                "responses": responses(
                    ok(
                        "Pending actions",
                        closed(
                            {
                                "bulk_actions": {"type": "array", "items": ref("BulkAction")},
                                "undo_seconds": UNDO_SECONDS,
                            }
                        ),
                    ),
                    400,
                    401,
                    403,
                    503,
                ),
            },
        },
        f"{api}/bulk-actions/{{action_id}}": {
            "parameters": ACTION_ID,
            "get": {
                "operationId": "getBulkAction",
                "summary": "A bulk action and, once applied, each item's outcome",
                "responses": responses(ok("The action", ONE), 400, 401, 403, 404, 503),
            },
        },
        f"{api}/bulk-actions/{{action_id}}/undo": {
            "parameters": ACTION_ID,
            "post": {
                "operationId": "undoBulkAction",
                "summary": "Cancel a pending bulk action before its apply_at (its moderator or "
                "an admin); audited, nothing is published",
                "requestBody": body(closed({})),
                "responses": responses(
                    ok("The undone action", ONE), 400, 401, 403, 404, 409, 413, 503
                ),
            },
        },
    }
