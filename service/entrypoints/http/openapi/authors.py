"""The author routes' part of the OpenAPI document: a site's trusted and blocked authors."""

from __future__ import annotations

from service.domain.authors import AuthorStatus
from service.entrypoints.http import author_views, parse
from service.entrypoints.http.openapi.shapes import (
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

AUTHOR_ID: Json = {"type": "string", "pattern": author_views.AUTHOR_ID_PATTERN}

SCHEMAS: Json = {
    "AuthorMark": closed(
        {
            "site_id": SITE_ID,
            "author_id": {"type": "string"},
            "status": enum(AuthorStatus)
            | {
                "description": "trusted: approved without scoring unless a reject rule applies "
                "(trusted_author); blocked: rejected (blocked_author). Joins the policy file's "
                "authors.trusted / authors.blocked for the site; a block (file or store) wins"
            },
            "note": string_or_null(description="the moderator's note: untrusted, render as text"),
            "set_by": {"type": "string", "description": "who set it: role:id"},
            "set_at": {"type": "string", "format": "date-time"},
        }
    ),
    "AuthorChange": closed(
        {
            "author": nullable(ref("AuthorMark"))
            | {"description": "the status in force now; null: none (lifted)"},
            "previous": nullable(ref("AuthorMark"))
            | {"description": "the status before; the same as author when nothing changed"},
        }
    ),
}

_SITE_PATH = {"name": "site_id", "in": "path", "required": True, "schema": SITE_ID}
_PATH = [_SITE_PATH, {"name": "author_id", "in": "path", "required": True, "schema": AUTHOR_ID}]
_WHO = " (admins and the site's moderators; audited)"


def paths() -> Json:
    site = "/api/v1/sites/{site_id}/authors"
    return {
        site: {
            "parameters": [_SITE_PATH],
            "get": {
                "operationId": "listAuthors",
                "summary": "The site's trusted and blocked authors, by author id",
                "parameters": [
                    query("status", enum(AuthorStatus), "only authors with this status"),
                    query(
                        "cursor",
                        {"type": "string", "pattern": parse.CURSOR_PATTERN},
                        "a next_cursor, as returned",
                    ),
                    query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": parse.MAX_LIMIT,
                            "default": parse.DEFAULT_LIMIT,
                        },
                        "page size",
                    ),
                ],
                "responses": responses(
                    ok(
                        "A page",
                        closed(
                            {
                                "authors": {"type": "array", "items": ref("AuthorMark")},
                                "next_cursor": string_or_null(description="null on the last page"),
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
        f"{site}/{{author_id}}": {
            "parameters": _PATH,
            "get": {
                "operationId": "getAuthor",
                "summary": "An author's status on the site; 404 when neither trusted nor blocked",
                "responses": responses(
                    ok("The status", closed({"author": ref("AuthorMark")})),
                    400,
                    401,
                    403,
                    404,
                    503,
                ),
            },
            "put": {
                "operationId": "setAuthor",
                "summary": "Trust or block the author on the site" + _WHO + "; the pipeline "
                "applies it from the author's next comment, on every instance",
                "requestBody": body(
                    closed(
                        {
                            "status": enum(AuthorStatus),
                            "note": string_or_null(
                                minLength=1, maxLength=author_views.MAX_AUTHOR_NOTE
                            ),
                        },
                        required=["status"],
                    )
                ),
                "responses": responses(
                    ok("The status now and before", ref("AuthorChange")),
                    400,
                    401,
                    403,
                    413,
                    503,
                ),
            },
            "delete": {
                "operationId": "clearAuthor",
                "summary": "Lift the author's trust or block on the site" + _WHO + "; the "
                "policy file's lists stay; 404 when there is none",
                "responses": responses(
                    ok("The status lifted (author is null)", ref("AuthorChange")),
                    400,
                    401,
                    403,
                    404,
                    503,
                ),
            },
        },
    }
