"""The aiohttp application: routes, the error and auth middlewares, security headers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from service.adapters.token_file import TokenRegistry
from service.domain.errors import ModerationError
from service.entrypoints.http import author_views, perspective_views, views
from service.entrypoints.http.coral import CoralConfig
from service.entrypoints.http.errors import (
    HTTP_CODES,
    ApiError,
    error_response,
    from_domain,
    google_error_response,
    perspective_error_response,
)
from service.entrypoints.http.keys import (
    CORAL,
    IDENTITY,
    MODERATE_BUDGET,
    MODERATOR,
    OPENAPI,
    PERSPECTIVE,
    POLICY,
    READINESS,
    REVIEW,
    TOKENS,
    Readiness,
)
from service.entrypoints.http.openapi import document
from service.settings import DEFAULT_MAX_TEXT_CHARS
from service.usecases.perspective.api import PerspectiveApi
from service.usecases.perspective.protocol import PerspectiveError
from service.usecases.policy_control import PolicyControl
from service.usecases.review_service import ReviewService
from service.usecases.sync_moderation import SyncModerator

log = logging.getLogger(__name__)

API: Final = "/api/v1"
STATIC: Final = Path(__file__).resolve().parent / "static"
MIB: Final = 1024 * 1024
# aiohttp answers a request line over its limit itself, in text/plain; this one is far above
# the longest valid URL (a 6,000-character cursor, a 256-character comment id percent-encoded).
MAX_REQUEST_LINE: Final = 128 * 1024

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_PASSED_ON: Final = ("Allow", "WWW-Authenticate")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(perspective_views.PREFIX):
        return await _google_errors(request, handler)
    return await _api_errors(request, handler)


async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "http_error")
        headers = {k: exc.headers[k] for k in _PASSED_ON if k in exc.headers}
        return error_response(exc.status, code, exc.reason, headers)
    except ModerationError as exc:
        api = from_domain(exc)
        if api is None:
            log.exception("unmapped error", extra={"path": request.path})
            return error_response(500, "internal_error", "internal error")
        if api.status == 503:
            log.warning("store unavailable", extra={"path": request.path, "error": str(exc)})
        return error_response(api.status, api.code, api.message)
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return error_response(500, "internal_error", "internal error")


async def _google_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Perspective routes answer every error in Google's shape, as Perspective does."""
    try:
        return await handler(request)
    except PerspectiveError as exc:
        return perspective_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: exc.headers[k] for k in _PASSED_ON if k in exc.headers}
        return google_error_response(exc.status, exc.reason, headers)
    except ModerationError as exc:
        api = from_domain(exc)
        if api is None:
            log.exception("unmapped error", extra={"path": request.path})
            return google_error_response(500, "Internal error.")
        if api.status == 503:
            log.warning("store unavailable", extra={"path": request.path, "error": str(exc)})
        return google_error_response(api.status, api.message)
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return google_error_response(500, "Internal error.")


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route under /api/ needs a known bearer token, unknown routes included (so that a
    caller without one learns nothing about which routes exist)."""
    if request.path.startswith("/api/"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        identity = (
            request.app[TOKENS].authenticate(token.strip()) if scheme.lower() == "bearer" else None
        )
        if identity is None:
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        request[IDENTITY] = identity
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith(("/api/", perspective_views.PREFIX)):
        response.headers["Cache-Control"] = "no-store"


async def _page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _always_ready() -> dict[str, bool]:
    return {}


def build_app(
    review: ReviewService,
    auth: TokenRegistry,
    *,
    readiness: Readiness | None = None,
    client_max_size: int = MIB,
    metrics: CollectorRegistry | None = None,
    policy: PolicyControl | None = None,
    moderator: SyncModerator | None = None,
    coral: CoralConfig | None = None,
    moderate_budget_seconds: float = 1.0,
    perspective: PerspectiveApi | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> web.Application:
    """The app; `max_text_chars` (MODERATION_MAX_TEXT_CHARS) is the limit the OpenAPI document
    states, the one the pipeline and the Perspective API enforce."""
    app = web.Application(
        middlewares=[errors_as_json, bearer_auth], client_max_size=client_max_size
    )
    app[REVIEW] = review
    app[TOKENS] = auth
    app[READINESS] = readiness or _always_ready
    app[OPENAPI] = json.dumps(document(max_text_chars=max_text_chars), indent=1).encode()
    if policy is not None:
        app[POLICY] = policy
    if moderator is not None:
        app[MODERATOR] = moderator
    if coral is not None:
        app[CORAL] = coral
    if perspective is not None:
        app[PERSPECTIVE] = perspective
    app[MODERATE_BUDGET] = moderate_budget_seconds
    app.on_response_prepare.append(_security_headers)
    r = app.router
    r.add_get("/healthz", views.health, allow_head=False)
    r.add_get("/readyz", views.ready, allow_head=False)
    if metrics is not None:
        r.add_get("/metrics", make_aiohttp_handler(metrics), allow_head=False)
    r.add_get("/", _page)
    r.add_static("/static/", STATIC, append_version=False)
    r.add_get(f"{API}/openapi.json", views.openapi, allow_head=False)
    r.add_get(f"{API}/me", views.me, allow_head=False)
    r.add_get(f"{API}/queue", views.queue, allow_head=False)
    r.add_post(f"{API}/queue/claim", views.claim)
    r.add_post(f"{API}/queue/release", views.release)
    r.add_get(f"{API}/items/{{site_id}}/{{comment_id}}", views.detail, allow_head=False)
    r.add_post(f"{API}/items/{{site_id}}/{{comment_id}}/decision", views.decide)
    r.add_post(f"{API}/decisions", views.decide_many)
    r.add_post(f"{API}/bulk-actions", views.create_bulk_action)
    r.add_get(f"{API}/bulk-actions", views.bulk_actions, allow_head=False)
    r.add_get(f"{API}/bulk-actions/{{action_id}}", views.bulk_action, allow_head=False)
    r.add_post(f"{API}/bulk-actions/{{action_id}}/undo", views.undo_bulk_action)
    r.add_get(f"{API}/sites/{{site_id}}/authors", author_views.list_authors, allow_head=False)
    author = f"{API}/sites/{{site_id}}/authors/{{author_id}}"
    r.add_get(author, author_views.get_author, allow_head=False)
    r.add_put(author, author_views.put_author)
    r.add_delete(author, author_views.delete_author)
    r.add_get(f"{API}/audit", views.audit, allow_head=False)
    r.add_get(f"{API}/stats", views.stats, allow_head=False)
    r.add_get(f"{API}/spot-checks", views.spot_checks, allow_head=False)
    r.add_post(f"{API}/admin/policy/reload", views.reload_policy)
    r.add_post(f"{API}/moderate", views.moderate)
    r.add_post("/integrations/coral/moderation", views.coral)
    r.add_post(perspective_views.ANALYZE, perspective_views.analyze)
    r.add_post(perspective_views.SUGGEST, perspective_views.suggest)
    return app


def app_runner(app: web.Application) -> web.AppRunner:
    """The runner to serve `build_app`'s application with: no access log (it would hold
    query strings), a request-line limit that fits every valid URL of the API."""
    # The request handler's options are keyword arguments of the runner itself: an unknown
    # one makes aiohttp drop them all (the access log included) with only a warning.
    return web.AppRunner(
        app, access_log=None, max_line_size=MAX_REQUEST_LINE, max_field_size=16 * 1024
    )
