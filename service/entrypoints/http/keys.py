"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from service.adapters.token_file import TokenRegistry
from service.domain.access import Identity
from service.entrypoints.http.coral import CoralConfig
from service.usecases.perspective.api import PerspectiveApi
from service.usecases.policy_control import PolicyControl
from service.usecases.review_service import ReviewService
from service.usecases.sync_moderation import SyncModerator

Readiness = Callable[[], Awaitable[dict[str, bool]]]

REVIEW: Final = web.AppKey("review", ReviewService)
TOKENS: Final = web.AppKey("tokens", TokenRegistry)
READINESS: Final[web.AppKey[Readiness]] = web.AppKey("readiness")
OPENAPI: Final = web.AppKey("openapi", bytes)
IDENTITY: Final = web.RequestKey("identity", Identity)
POLICY: Final = web.AppKey("policy", PolicyControl)
MODERATOR: Final = web.AppKey("moderator", SyncModerator)
CORAL: Final = web.AppKey("coral", CoralConfig)
MODERATE_BUDGET: Final = web.AppKey("moderate_budget", float)
PERSPECTIVE: Final = web.AppKey("perspective", PerspectiveApi)
