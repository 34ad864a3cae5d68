"""The composition root: the one place that builds real adapters from `Settings` and wires them
to the use cases and the entrypoints. It runs nothing: `service/entrypoints/serve/run.py` runs
what it builds."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from aiohttp import web

from classifier import ModelLoadError, normalize
from service.adapters.language import LangidDetector
from service.adapters.metrics import PrometheusMetrics
from service.adapters.model_registry import ModelWatcher
from service.adapters.outbox import OutboxRelay
from service.adapters.policy_file import PolicyFile
from service.adapters.sklearn_classifier import ModelClassifier
from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import TokenRegistry
from service.contracts.codec import Limits
from service.domain.errors import InvalidPolicy, ModerationError, StoreFailed, StoreUnavailable
from service.domain.policy import Policy
from service.entrypoints.http.app import build_app
from service.entrypoints.http.coral import ApproveAnswer, BodyFormat, CoralConfig, StaffPolicy
from service.entrypoints.http.keys import Readiness
from service.entrypoints.kafka.feedback_loop import FeedbackConfig, FeedbackConsumer
from service.entrypoints.kafka.pipeline_loop import KafkaConfig, KafkaPipelineRunner
from service.settings import Settings
from service.usecases.feedback import FeedbackHandler
from service.usecases.perspective.api import PerspectiveApi, PerspectiveConfig
from service.usecases.pipeline import Pipeline, Topics
from service.usecases.policy_control import PolicyControl
from service.usecases.ports import Classifier, Clock, LanguageDetector, ReviewStore
from service.usecases.rate_limit import RateLimiter
from service.usecases.review_service import ReviewService
from service.usecases.sync_moderation import SyncModerator

log = logging.getLogger(__name__)


class StartupError(ModerationError):
    """Something the service needs at start is missing or broken; the message says what."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Components:
    pipeline: Pipeline
    kafka: KafkaConfig
    review: ReviewService
    control: PolicyControl
    metrics: PrometheusMetrics
    clock: Clock
    language: LanguageDetector  # the pipeline's; `adapters.language.language_of` takes it


def build(
    settings: Settings,
    classifier: Classifier,
    store: ReviewStore,
    *,
    clock: Clock | None = None,
    shadow_classifier: Classifier | None = None,
    language_detector: LanguageDetector | None = None,
) -> Components:
    """Everything but the network listeners and background loops. Loads the policy file and,
    unless one is given, the language detector's model."""
    clock = clock or SystemClock()
    language = language_detector or LangidDetector()
    metrics = PrometheusMetrics()
    source = (
        None
        if settings.policy_file is None
        else PolicyFile(settings.policy_file, normalize, settings.policy.default)
    )
    control = PolicyControl(
        source,
        fallback=settings.policy,
        store=store,
        clock=clock,
        on_change=lambda _: None,
    )
    try:
        policy = control.load()
    except InvalidPolicy as exc:
        raise StartupError(str(exc)) from exc
    pipeline = Pipeline(
        classifier,
        policy,
        clock,
        Topics(
            settings.topic_comments,
            settings.topic_decisions,
            settings.topic_dlq,
            settings.topic_shadow,
        ),
        Limits(settings.max_text_chars, settings.max_message_bytes),
        normalize=normalize,
        shadow_classifier=shadow_classifier,
        language_detector=language,
    )

    def policy_changed(new: Policy) -> None:
        pipeline.set_policy(new)
        metrics.versions(pipeline.model_version, new.version)

    control.on_change = policy_changed
    metrics.versions(classifier.version, policy.version)
    kafka = KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic_comments,
        group_id=settings.group_id,
        transactional_id=settings.transactional_id,
        dead_letter_topic=settings.topic_dlq,
        batch_max_records=settings.batch_max_records,
        retry_max_seconds=settings.kafka_retry_max_seconds,
    )
    review = ReviewService(
        store,
        clock,
        decisions_topic=settings.topic_decisions,
        claim_lease=timedelta(seconds=settings.claim_lease_seconds),
        metrics=metrics,
        undo_window=timedelta(seconds=settings.undo_seconds),
    )
    return Components(pipeline, kafka, review, control, metrics, clock, language)


def http_app(
    settings: Settings,
    parts: Components,
    store: SqlReviewStore,
    tokens: TokenRegistry,
    executor: ThreadPoolExecutor,
    *,
    readiness: Readiness | None = None,
) -> tuple[web.Application, SyncModerator]:
    """The HTTP API as `serve` wires it (the review queue, policy control, synchronous
    moderation, Coral's phase, the Perspective-compatible API) and its synchronous moderator,
    whose scoring runs on `executor`; drain the moderator after the app stops."""
    moderator = SyncModerator(
        parts.pipeline,
        store,
        parts.clock,
        executor,
        decisions_topic=settings.topic_decisions,
    )
    app = build_app(
        parts.review,
        tokens,
        readiness=readiness,
        metrics=parts.metrics.registry,
        policy=parts.control,
        moderator=moderator,
        coral=CoralConfig(
            secrets=tuple(secret.encode() for secret in settings.coral_secrets),
            budget_seconds=settings.coral_budget_seconds,
            staff=StaffPolicy(settings.coral_staff),
            on_approve=ApproveAnswer(settings.coral_on_approve),
            body_format=BodyFormat(settings.coral_format),
        ),
        moderate_budget_seconds=settings.moderate_budget_seconds,
        max_text_chars=settings.max_text_chars,
        perspective=PerspectiveApi(
            tokens,
            moderator,
            store,
            store,
            clock=parts.clock,
            limiter=RateLimiter(settings.perspective_rate, settings.perspective_burst),
            metrics=parts.metrics,
            config=PerspectiveConfig(
                max_text_chars=settings.max_text_chars,
                budget_seconds=settings.perspective_budget_seconds,
            ),
            detector=parts.language,
            executor=executor,
        ),
    )
    return app, moderator


def load_model(path: Path) -> ModelClassifier:
    try:
        model = ModelClassifier.load(path)
    except ModelLoadError as exc:
        raise StartupError(
            f"cannot load the model at {path}: {exc} (train one with `moderation train`)"
        ) from exc
    log.info("model loaded", extra={"model_version": model.version, "path": str(path)})
    return model


# Tokens anyone would try first. A tokens file holding one of them is refused.
WELL_KNOWN_TOKENS: Final = (
    "admin",
    "administrator",
    "changeme",
    "change-me",
    "default",
    "letmein",
    "moderator",
    "pass",
    "password",
    "secret",
    "test",
    "token",
    "12345678",
    "00000000",
)


def check_tokens(registry: TokenRegistry, settings: Settings) -> None:
    """Outside development mode the API must be protected: a tokens file with an admin token,
    and no token anyone could guess."""
    weak = [t for t in WELL_KNOWN_TOKENS if registry.authenticate(t) is not None]
    if weak:
        raise StartupError(
            f"{settings.tokens_file} holds a well-known token; replace it "
            "(`moderation tokens add` makes random ones)"
        )
    if settings.dev_mode:
        return
    if settings.tokens_file is None:
        raise StartupError(
            "no MODERATION_TOKENS_FILE: the API would have no tokens. Create one with "
            "`moderation tokens add --role admin ...`, or set MODERATION_DEV_MODE=true to run "
            "without (every API request is then refused)"
        )
    if not registry.has_admin():
        raise StartupError(
            f"{settings.tokens_file} has no admin token; add one with "
            "`moderation tokens add --role admin`, or set MODERATION_DEV_MODE=true"
        )


def load_tokens(settings: Settings) -> TokenRegistry:
    registry = (
        TokenRegistry(())
        if settings.tokens_file is None
        else TokenRegistry.load(settings.tokens_file)
    )
    check_tokens(registry, settings)
    if settings.tokens_file is None:
        log.warning(
            "development mode without MODERATION_TOKENS_FILE: the API refuses every request"
        )
    return registry


async def open_store(settings: Settings, patience_seconds: float = 30.0) -> SqlReviewStore:
    """Open and migrate the store. A passing failure (the database is starting, or another
    instance holds it) is retried for a while; a lasting one stops the start."""
    store = SqlReviewStore.from_url(settings.database_url)
    deadline = asyncio.get_running_loop().time() + patience_seconds
    delay = 0.2
    while True:
        try:
            await store.migrate()
            break
        except StoreUnavailable as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                await store.close()
                raise StartupError(f"cannot open the review store: {exc}") from exc
            log.warning(
                "review store not ready, retrying",
                extra={"error": str(exc), "retry_in_seconds": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except StoreFailed as exc:
            await store.close()
            raise StartupError(f"cannot open the review store: {exc}") from exc
    log.info("review store ready", extra={"dialect": store.dialect})
    return store


@dataclass(frozen=True, slots=True)
class Loops:
    """The background loops of one `serve` process, built but not started."""

    pipeline: KafkaPipelineRunner
    relay: OutboxRelay
    watcher: ModelWatcher
    feedback: FeedbackConsumer


def loops(
    settings: Settings,
    parts: Components,
    store: SqlReviewStore,
    executor: ThreadPoolExecutor,
    stop: asyncio.Event,
) -> Loops:
    """The Kafka pipeline (scoring on `executor`), the outbox relay, the model watcher and the
    feedback consumer, each ending when `stop` is set."""

    def swapped(model: Classifier) -> None:
        parts.pipeline.set_classifier(model)
        parts.metrics.versions(model.version, parts.pipeline.policy.version)

    watcher = ModelWatcher(
        settings.model_path,
        parts.pipeline.classifier,
        load=ModelClassifier.load,
        on_swap=swapped,
        every_seconds=settings.model_reload_seconds,
    )
    relay = OutboxRelay(
        store,
        settings.kafka_bootstrap,
        parts.clock,
        stop,
        retry_max_seconds=settings.kafka_retry_max_seconds,
        client_id=f"{settings.transactional_id}-outbox",
        metrics=parts.metrics,
    )
    pipeline = KafkaPipelineRunner(
        parts.kafka,
        parts.pipeline,
        executor,
        stop,
        store=store,
        metrics=parts.metrics,
        clock=parts.clock,
    )
    feedback = FeedbackConsumer(
        FeedbackConfig(
            bootstrap=settings.kafka_bootstrap,
            reports_topic=settings.topic_reports,
            appeals_topic=settings.topic_appeals,
            group_id=f"{settings.group_id}-feedback",
            dead_letter_topic=settings.topic_dlq,
            client_id=f"{settings.transactional_id}-feedback",
            retry_max_seconds=settings.kafka_retry_max_seconds,
        ),
        FeedbackHandler(
            store, parts.clock, Limits(settings.max_text_chars, settings.max_message_bytes)
        ),
        parts.clock,
        stop,
        metrics=parts.metrics,
    )
    return Loops(pipeline, relay, watcher, feedback)
