"""The document's Perspective-compatible routes, at Google's paths and in Google's shapes: the
requests as `service.usecases.perspective.protocol` reads them (unknown fields ignored), the
answers as it writes them, and Google's error body."""

from __future__ import annotations

from typing import Final

from service.entrypoints.http import perspective_views
from service.entrypoints.http.errors import GOOGLE_STATUS
from service.entrypoints.http.openapi.shapes import (
    SCORE,
    Json,
    body,
    closed,
    enum,
    ok,
    ref,
    responses,
)
from service.usecases.perspective import protocol
from service.usecases.perspective.protocol import Attribute

# the statuses the two routes answer with, each in Google's error body
ERRORS: Final[dict[int, str]] = {
    400: "Invalid argument: malformed JSON, a bad field, an unknown attribute, an invalid key",
    403: "No key, or a key that may not score for this site",
    404: "The Perspective-compatible API is not enabled here",
    413: "Request body too large",
    429: "The key's rate limit is spent; retry after Retry-After seconds",
    500: "The model could not score this comment",
    503: "The store is unavailable; retry",
    504: "The comment was not scored within the latency budget",
}
SECURITY: Final[list[Json]] = [{"perspectiveKey": []}, {"perspectiveKeyHeader": []}]
SECURITY_SCHEMES: Final[Json] = {
    "perspectiveKey": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "a site token (role site), as Google's API key",
    },
    "perspectiveKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Goog-Api-Key"},
}


def _optional_text(limit: int) -> Json:
    return {"type": ["string", "null"], "maxLength": limit}


def _comment(max_text_chars: int) -> Json:
    limit = protocol.HTML_TEXT_FACTOR * max_text_chars
    return {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": limit,
                "description": f"what is scored is this text, or for HTML its text: at most "
                f"{max_text_chars} characters (MODERATION_MAX_TEXT_CHARS), not blank",
            },
            "type": {"type": ["string", "null"], "enum": [*protocol.TEXT_TYPES, None]},
        },
    }


_LANGUAGES: Final[Json] = {
    "type": ["array", "null"],
    "maxItems": protocol.MAX_LANGUAGES,
    "items": {"type": "string", "maxLength": 64},
    "description": "BCP 47 language tags",
}
_COMMON: Final[Json] = {
    "languages": _LANGUAGES,
    "clientToken": _optional_text(protocol.MAX_TOKEN_CHARS),
    "communityId": {
        **_optional_text(protocol.MAX_COMMUNITY_CHARS),
        "description": "the site, for a key that serves several",
    },
}
_PROBABILITY_TYPE: Final[Json] = {
    "type": ["string", "null"],
    "enum": [*protocol.SCORE_TYPES, None],
}


def _per_attribute(schema: Json) -> Json:
    return {
        "type": "object",
        "minProperties": 1,
        "properties": {a.value: schema for a in Attribute},
        "additionalProperties": False,
    }


def _score() -> Json:
    return closed({"value": SCORE, "type": enum([protocol.PROBABILITY])})


def schemas(max_text_chars: int) -> Json:
    return {
        "AnalyzeCommentRequest": {
            "type": "object",
            "required": ["comment", "requestedAttributes"],
            "properties": {
                "comment": _comment(max_text_chars),
                "requestedAttributes": _per_attribute(
                    {
                        "type": "object",
                        "properties": {
                            "scoreType": _PROBABILITY_TYPE,
                            "scoreThreshold": {**SCORE, "type": ["number", "null"]},
                        },
                    }
                ),
                **_COMMON,
                "doNotStore": {
                    "type": ["boolean", "null"],
                    "description": "true: scored, never stored, published or logged",
                },
                "spanAnnotations": {"type": ["boolean", "null"]},
                "sessionId": _optional_text(protocol.MAX_TOKEN_CHARS),
            },
        },
        "AnalyzeCommentResponse": closed(
            {
                "attributeScores": {
                    "type": "object",
                    "properties": {
                        a.value: closed(
                            {
                                "summaryScore": _score(),
                                "spanScores": {
                                    "type": "array",
                                    "items": closed(
                                        {
                                            "begin": {"type": "integer", "minimum": 0},
                                            "end": {"type": "integer", "minimum": 0},
                                            "score": _score(),
                                        }
                                    ),
                                    "description": "offsets in UTF-16 code units",
                                },
                            },
                            required=["summaryScore"],
                        )
                        for a in Attribute
                    },
                    "additionalProperties": False,
                    "description": "each requested attribute not below its scoreThreshold",
                },
                "languages": {"type": "array", "items": {"type": "string"}},
                "detectedLanguages": {"type": "array", "items": {"type": "string"}},
                "clientToken": {"type": "string"},
            },
            required=["attributeScores", "languages", "detectedLanguages"],
        ),
        "SuggestCommentScoreRequest": {
            "type": "object",
            "required": ["comment", "attributeScores"],
            "properties": {
                "comment": _comment(max_text_chars),
                "attributeScores": _per_attribute(
                    {
                        "type": "object",
                        "properties": {
                            "summaryScore": {
                                "type": ["object", "null"],
                                "required": ["value"],
                                "properties": {"value": SCORE, "type": _PROBABILITY_TYPE},
                            },
                            "spanScores": {"description": "accepted, not learnt from"},
                        },
                        "description": "a summaryScore for at least one attribute",
                    }
                ),
                **_COMMON,
            },
        },
        "SuggestCommentScoreResponse": closed(
            {
                "requestedLanguages": {"type": "array", "items": {"type": "string"}},
                "detectedLanguages": {"type": "array", "items": {"type": "string"}},
                "clientToken": {"type": "string"},
            },
            required=["requestedLanguages", "detectedLanguages"],
        ),
        "GoogleError": closed(
            {
                "error": closed(
                    {
                        "code": {"type": "integer", "enum": sorted(GOOGLE_STATUS)},
                        "message": {"type": "string"},
                        "status": enum(sorted({*GOOGLE_STATUS.values(), "UNKNOWN"})),
                    }
                )
            }
        ),
    }


def error_responses() -> Json:
    out: Json = {}
    for status, description in ERRORS.items():
        out[f"G{status}"] = ok(description, ref("GoogleError"))
    out["G429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return out


def _operation(operation_id: str, summary: str, request: str, answer: Json) -> Json:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "security": SECURITY,
            "requestBody": body(ref(request)),
            "responses": responses(answer, *ERRORS, prefix="G"),
        }
    }


def paths() -> Json:
    return {
        perspective_views.ANALYZE: _operation(
            "perspectiveAnalyze",
            "Score a comment as Perspective's comments:analyze does. Without doNotStore the "
            "comment is also moderated like POST /api/v1/moderate.",
            "AnalyzeCommentRequest",
            ok(
                "The requested attributes' scores",
                ref("AnalyzeCommentResponse"),
                headers={
                    perspective_views.SUBSTITUTED: {
                        "description": "the attributes answered with the abuse score, "
                        "comma-separated (the model has no sub-score for them)",
                        "schema": {"type": "string"},
                    }
                },
            ),
        ),
        perspective_views.SUGGEST: _operation(
            "perspectiveSuggestScore",
            "A client's correction, as Perspective's comments:suggestscore: stored as a "
            "human label for the key's site",
            "SuggestCommentScoreRequest",
            ok("Taken", ref("SuggestCommentScoreResponse")),
        ),
    }
