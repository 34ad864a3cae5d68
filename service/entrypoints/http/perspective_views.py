"""Thin views of the Perspective-compatible API, at Google's own paths: the key from the query
string (`?key=`) or the `X-Goog-Api-Key` header, the body to `PerspectiveApi`. Errors become
Google's error body in the middleware."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from service.entrypoints.http.keys import PERSPECTIVE
from service.usecases.perspective.api import PerspectiveApi
from service.usecases.perspective.protocol import ErrorKind, PerspectiveError, invalid

PREFIX: Final = "/v1alpha1/"
ANALYZE: Final = f"{PREFIX}comments:analyze"
SUGGEST: Final = f"{PREFIX}comments:suggestscore"
# a header naming the attributes answered with the abuse score (the model has no sub-score)
SUBSTITUTED: Final = "Moderation-Substituted-Attributes"


def _api(request: web.Request) -> PerspectiveApi:
    api = request.app.get(PERSPECTIVE)
    if api is None:
        raise PerspectiveError(ErrorKind.NOT_FOUND, "The Perspective API is not enabled here.")
    return api


def _key(request: web.Request) -> str | None:
    given = request.query.getall("key", [])
    header = request.headers.get("X-Goog-Api-Key")
    if header is not None:
        given = [*given, header]
    if len(given) > 1:
        raise invalid("The API key must be given once.")
    return given[0] if given else None


async def analyze(request: web.Request) -> web.Response:
    api = _api(request)
    answer = await api.analyze(_key(request), await request.read())
    headers = (
        {SUBSTITUTED: ",".join(a.value for a in answer.substituted)} if answer.substituted else None
    )
    return web.json_response(answer.document, headers=headers)


async def suggest(request: web.Request) -> web.Response:
    api = _api(request)
    return web.json_response(await api.suggest(_key(request), await request.read()))
