"""The OpenAPI 3.1 document of the HTTP app, built from the code: the limits the parsers
enforce, the settings that set limits (`max_text_chars`: MODERATION_MAX_TEXT_CHARS), the domain's
enums. A snapshot is committed at docs/openapi.json (`make openapi` writes it)."""

from __future__ import annotations

import json

from service.entrypoints.http.openapi import (
    authors,
    bulk,
    errors,
    integrations,
    perspective,
    review,
    review_schemas,
)
from service.entrypoints.http.openapi.shapes import Json
from service.settings import DEFAULT_MAX_TEXT_CHARS

__all__ = ["document", "rendered"]


def rendered(doc: Json) -> str:
    """The document as the snapshot holds it: indented, keys in the document's order."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def document(*, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Comment moderation: review API and integrations",
            "version": "1.0.0",
            "description": "Moderators work the review queue; sites' backends submit comments. "
            "Every route under /api/ needs a bearer token; /healthz and /readyz need none; "
            "Coral's phase is signed; the Perspective-compatible routes take a site token as "
            "Google's API key. Errors are "
            '{"error": {"code": "<stable code>", "message": "..."}}, on the Perspective '
            'routes Google\'s {"error": {"code": <HTTP status>, "message": "...", '
            '"status": "<canonical code>"}}.',
        },
        "security": [{"bearer": []}],
        "paths": review.paths()
        | bulk.paths()
        | authors.paths()
        | integrations.paths()
        | perspective.paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                **perspective.SECURITY_SCHEMES,
            },
            "schemas": errors.SCHEMAS
            | review_schemas.SCHEMAS
            | bulk.SCHEMAS
            | authors.SCHEMAS
            | integrations.schemas(max_text_chars)
            | perspective.schemas(max_text_chars),
            "responses": errors.responses() | perspective.error_responses(),
        },
    }
