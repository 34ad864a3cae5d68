"""Typed keys for what the app and each request carry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from service.auth import Identity, TokenRegistry
from service.policy_control import PolicyControl
from service.review_service import ReviewService

Readiness = Callable[[], Awaitable[dict[str, bool]]]

REVIEW: Final = web.AppKey("review", ReviewService)
TOKENS: Final = web.AppKey("tokens", TokenRegistry)
READINESS: Final[web.AppKey[Readiness]] = web.AppKey("readiness")
OPENAPI: Final = web.AppKey("openapi", bytes)
IDENTITY: Final = web.RequestKey("identity", Identity)
POLICY: Final = web.AppKey("policy", PolicyControl)
