"""The synchronous routes (`/api/v1/moderate`, Coral's phase, the Perspective-compatible API)
over the real pipeline, SQLite store and HTTP app, with a fake model and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from service.adapters.metrics import PrometheusMetrics
from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import TokenRegistry, add_token
from service.contracts.codec import Limits
from service.domain.policy import Policy, SitePolicy, Thresholds
from service.entrypoints.http.app import build_app
from service.entrypoints.http.coral import CoralConfig
from service.usecases.perspective.api import PerspectiveApi, PerspectiveConfig
from service.usecases.pipeline import Pipeline, Topics
from service.usecases.ports import LanguageDetector
from service.usecases.rate_limit import RateLimiter
from service.usecases.review_service import ReviewService
from service.usecases.sync_moderation import SyncModerator
from tests.fakes import FixedClock, KeywordClassifier

NEW_SECRET = b"whsec-new-0123456789abcdef"
OLD_SECRET = b"whsec-old-0123456789abcdef"
BUDGET = 0.2
POLICY = Policy("p-1", SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9)))


class ManualTicks:
    """A monotonic clock that moves only when told to (for rate limits)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    client: TestClient[Request, Application]
    store: SqlReviewStore
    moderator: SyncModerator
    model: KeywordClassifier
    tokens: dict[str, str]
    metrics: PrometheusMetrics
    ticks: ManualTicks

    def counted(self, method: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "moderation_perspective_requests_total", {"method": method, "outcome": outcome}
        )
        return value or 0.0


@asynccontextmanager
async def sync_stack(
    tmp_path: Path,
    model: KeywordClassifier | None = None,
    *,
    coral: CoralConfig | None = None,
    policy: Policy = POLICY,
    rate: float = 1000.0,
    burst: float = 1000.0,
    max_text_chars: int = 20_000,
    language_detector: LanguageDetector | None = None,
) -> AsyncIterator[Stack]:
    model = model or KeywordClassifier()
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    await store.migrate()
    clock = FixedClock()
    pipeline = Pipeline(
        model,
        policy,
        clock,
        Topics(decisions="decisions"),
        Limits(max_text_chars=max_text_chars),
        language_detector=language_detector,
    )
    executor = ThreadPoolExecutor(max_workers=1)
    moderator = SyncModerator(pipeline, store, clock, executor, decisions_topic="decisions")
    path = tmp_path / "tokens.json"
    tokens = {
        "herald": add_token(path, "herald-cms", "site", ["herald"]),
        "network": add_token(path, "network-cms", "site", ["herald", "tech-blog"]),
        "moderator": add_token(path, "alice", "moderator", ["*"]),
        "admin": add_token(path, "root", "admin", ["*"]),
    }
    registry = TokenRegistry.load(path)
    metrics = PrometheusMetrics()
    ticks = ManualTicks()
    perspective = PerspectiveApi(
        registry,
        moderator,
        store,
        store,
        clock=clock,
        limiter=RateLimiter(rate, burst, clock=ticks),
        metrics=metrics,
        config=PerspectiveConfig(max_text_chars=max_text_chars, budget_seconds=BUDGET),
        detector=language_detector,
        executor=executor,
    )
    app = build_app(
        ReviewService(store, clock, decisions_topic="decisions", claim_lease=timedelta(minutes=5)),
        registry,
        moderator=moderator,
        coral=coral or CoralConfig(secrets=(OLD_SECRET, NEW_SECRET), budget_seconds=BUDGET),
        moderate_budget_seconds=BUDGET,
        perspective=perspective,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Stack(client, store, moderator, model, tokens, metrics, ticks)
    finally:
        release = getattr(model, "gate", None)
        if release is not None:
            release.set()
        await moderator.drain()
        await client.close()
        executor.shutdown(wait=True)
        await store.close()
