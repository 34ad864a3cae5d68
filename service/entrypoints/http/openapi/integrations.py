"""The document's synchronous routes for sites' backends: `POST /api/v1/moderate` (a comment
event in, its decision event out) and Coral's external moderation phase."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Final

from service.contracts.codec import COMMENT_SCHEMA, DECISION_SCHEMA, SCHEMA_DIR
from service.entrypoints.http import coral
from service.entrypoints.http.openapi.shapes import (
    REASON_CODES,
    Json,
    body,
    closed,
    enum,
    ok,
    ref,
    responses,
    string_or_null,
)

CORAL_PATH: Final = "/integrations/coral/moderation"


@cache
def _event_schema(name: str) -> Json:
    doc: Json = json.loads((SCHEMA_DIR / f"{name.removeprefix('moderation.')}.json").read_text())
    return doc


def event_schema(name: str) -> Json:
    """A shipped event schema (service/contracts/schemas), as a schema of the document: without its
    `$schema` and `$id` (the document is its own base)."""
    doc = copy.deepcopy(_event_schema(name))
    doc.pop("$schema", None)
    doc.pop("$id", None)
    return doc


def schemas(max_text_chars: int) -> Json:
    comment = event_schema(COMMENT_SCHEMA)
    comment["properties"]["text"]["maxLength"] = max_text_chars
    decision = event_schema(DECISION_SCHEMA)
    decision["properties"]["reasons"]["items"]["properties"]["code"] = enum(REASON_CODES)
    any_text = string_or_null()
    return {
        "CommentEvent": comment,
        "DecisionEvent": decision,
        # Only the fields the phase reads; the containers Coral always sends as objects are
        # not typed, because a missing or odd one reads as no value.
        "CoralRequest": {
            "type": "object",
            "required": ["comment", "site"],
            "properties": {
                "action": string_or_null(description="NEW or EDIT"),
                "comment": {
                    "type": "object",
                    "required": ["body"],
                    "properties": {
                        "body": {
                            "type": "string",
                            "description": "HTML, unless the phase's format is plain text "
                            "(MODERATION_CORAL_FORMAT); its text is what is scored, and a text "
                            f"over {max_text_chars} characters is a 400 invalid_comment",
                        },
                        "parentID": any_text,
                    },
                },
                "author": {"properties": {"id": any_text, "role": any_text}},
                "story": {"properties": {"id": any_text, "url": any_text}},
                "site": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}},
                },
                "tenantID": any_text,
                "tenantDomain": any_text,
            },
        },
        "CoralAnswer": closed(
            {
                "status": enum(coral.AnswerStatus),
                "moderationAction": closed(
                    {
                        "status": enum([coral.AnswerStatus.REJECTED]),
                        "rejectionReason": closed(
                            {
                                "code": enum(coral.REJECTION_CODES),
                                "detailedExplanation": {"type": "string"},
                            }
                        ),
                    }
                ),
                "actions": {
                    "type": "array",
                    "items": closed(
                        {
                            "actionType": enum(["FLAG"]),
                            "reason": enum([coral.FLAG_TOXIC, coral.FLAG_SPAM]),
                        }
                    ),
                },
            },
            required=["status"],
        ),
    }


def paths() -> Json:
    return {
        "/api/v1/moderate": {
            "post": {
                "operationId": "moderate",
                "summary": "Decide one comment now (site or admin token). The body is a comment "
                "event (schema moderation.comment.v1), the answer its decision event "
                "(moderation.decision.v1), also published to comment-decisions. Asking again "
                "for the same (site_id, id) returns the first decision.",
                "requestBody": body(ref("CommentEvent")),
                "responses": responses(
                    ok(
                        "The decision event",
                        ref("DecisionEvent"),
                        headers={
                            "Idempotent-Replayed": {
                                "description": "true: an earlier request decided this comment",
                                "schema": enum(["true"]),
                            }
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
        CORAL_PATH: {
            "post": {
                "operationId": "coralModeration",
                "summary": "Coral's external moderation phase: Coral posts each new or edited "
                "comment, signed; the answer rejects it, withholds it for Coral's queue, or "
                "(204) has no objection. Needs no bearer token: the signature is the proof.",
                "security": [],
                "parameters": [
                    {
                        "name": "X-Coral-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "comma-separated sha256=<hex HMAC-SHA256 of the body> "
                        "values, one per signing secret (MODERATION_CORAL_SECRETS)",
                    }
                ],
                "requestBody": body(ref("CoralRequest")),
                "responses": {
                    **responses(ok("Our decision in Coral's words", ref("CoralAnswer")), 400),
                    "204": {
                        "description": "No objection: an approval (unless "
                        "MODERATION_CORAL_ON_APPROVE=approve), or no decision within the budget"
                    },
                    "401": ok("X-Coral-Signature does not match the body", ref("Error")),
                    "404": ok("The Coral integration is not enabled here", ref("Error")),
                    "413": {"$ref": "#/components/responses/E413"},
                    "503": {"$ref": "#/components/responses/E503"},
                },
            }
        },
    }
