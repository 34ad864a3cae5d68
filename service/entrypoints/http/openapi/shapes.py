"""Small builders of JSON Schema and OpenAPI fragments, shared by the document's parts."""

from __future__ import annotations

from typing import Any

from service.domain.model import ModeratorReason, ReasonCode
from service.entrypoints.http import parse

Json = dict[str, Any]

SITE_ID: Json = {"type": "string", "pattern": parse.SITE_PATTERN}
COMMENT_ID: Json = {"type": "string", "pattern": parse.COMMENT_ID_PATTERN}
SCORE: Json = {"type": "number", "minimum": 0, "maximum": 1}
# a reason's code: the automatic ones and a moderator's
REASON_CODES: list[str] = sorted(
    {*(c.value for c in ReasonCode), *(r.value for r in ModeratorReason)}
)


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Json) -> Json:
    return {"oneOf": [schema, {"type": "null"}]}


def string_or_null(**extra: Any) -> Json:
    return {"type": ["string", "null"], **extra}


def time_or_null() -> Json:
    return {"type": ["string", "null"], "format": "date-time"}


def closed(properties: Json, required: list[str] | None = None) -> Json:
    """An object with exactly these properties (all required unless told)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def enum(values: Any) -> Json:
    """A string that is one of `values` (an enum class, or an iterable of strings)."""
    return {"type": "string", "enum": [str(v) for v in values]}


def ok(description: str, schema: Json, headers: Json | None = None) -> Json:
    out: Json = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def responses(success: Json, *errors: int, prefix: str = "E") -> Json:
    """The 200 answer and, for each error status, the shared response `<prefix><status>`."""
    out: Json = {"200": success}
    for status in errors:
        out[str(status)] = {"$ref": f"#/components/responses/{prefix}{status}"}
    return out


def query(name: str, schema: Json, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def body(schema: Json) -> Json:
    return {"required": True, "content": {"application/json": {"schema": schema}}}
