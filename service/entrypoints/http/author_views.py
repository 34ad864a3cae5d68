"""The author routes: a site's trusted and blocked authors, read, set and lifted.

    GET    /api/v1/sites/{site_id}/authors[?status=&cursor=&limit=]
    GET    /api/v1/sites/{site_id}/authors/{author_id}
    PUT    /api/v1/sites/{site_id}/authors/{author_id}   {"status": "blocked", "note": "..."}
    DELETE /api/v1/sites/{site_id}/authors/{author_id}

Thin, like `views.py`: parse, call the `ReviewService` (which checks role and site), present.
The limits here are the ones `openapi/authors.py` documents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from service.domain.authors import AuthorStatus
from service.entrypoints.http import parse
from service.entrypoints.http.errors import invalid
from service.entrypoints.http.keys import IDENTITY, REVIEW
from service.entrypoints.http.present import author_mark as mark

# as the comment event allows an author id (2,048 characters), without control characters
AUTHOR_ID_PATTERN: Final = r"^[^\x00-\x1f\x7f]{1,2048}$"
MAX_AUTHOR_NOTE: Final = parse.MAX_NOTE
LIST_QUERY: Final = frozenset({"status", "cursor", "limit"})
STATUS_FIELDS: Final = frozenset({"status", "note"})
STATUSES: Final = tuple(s.value for s in AuthorStatus)

_AUTHOR_RE: Final = re.compile(AUTHOR_ID_PATTERN)


def _site(request: web.Request) -> str:
    return parse.site_id(request.match_info["site_id"], "path parameter 'site_id'")


def _ids(request: web.Request) -> tuple[str, str]:
    parse.query(request, parse.NO_QUERY)
    author = request.match_info["author_id"]
    if not _AUTHOR_RE.fullmatch(author):
        raise invalid(
            "path parameter 'author_id' must be 1-2048 characters without control characters"
        )
    return _site(request), author


def status_request(doc: Mapping[str, Any]) -> tuple[AuthorStatus, str | None]:
    status = doc.get("status")
    if status not in STATUSES:
        raise invalid(f"field 'status' must be one of {', '.join(STATUSES)}")
    note = doc.get("note")
    if note is not None and (
        not isinstance(note, str) or not 1 <= len(note) <= MAX_AUTHOR_NOTE or "\x00" in note
    ):
        raise invalid(
            f"field 'note' must be a string of 1-{MAX_AUTHOR_NOTE} characters without NUL, or null"
        )
    return AuthorStatus(status), note


async def list_authors(request: web.Request) -> web.Response:
    q = parse.query(request, LIST_QUERY)
    raw = q.get("status")
    if raw is not None and raw not in STATUSES:
        raise invalid(f"query parameter 'status' must be one of {', '.join(STATUSES)}")
    page = await request.app[REVIEW].authors(
        request[IDENTITY],
        _site(request),
        status=None if raw is None else AuthorStatus(raw),
        cursor=parse.query_cursor(q),
        limit=parse.query_limit(q),
    )
    return web.json_response(
        {"authors": [mark(m) for m in page.items], "next_cursor": page.next_cursor}
    )


async def get_author(request: web.Request) -> web.Response:
    site, author = _ids(request)
    found = await request.app[REVIEW].author(request[IDENTITY], site, author)
    return web.json_response({"author": mark(found)})


async def put_author(request: web.Request) -> web.Response:
    site, author = _ids(request)
    status, note = status_request(await parse.json_object(request, STATUS_FIELDS))
    change = await request.app[REVIEW].set_author(request[IDENTITY], site, author, status, note)
    previous = None if change.previous is None else mark(change.previous)
    return web.json_response({"author": mark(change.mark), "previous": previous})


async def delete_author(request: web.Request) -> web.Response:
    site, author = _ids(request)
    lifted = await request.app[REVIEW].clear_author(request[IDENTITY], site, author)
    return web.json_response({"author": None, "previous": mark(lifted)})
