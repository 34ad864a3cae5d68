"""The composition root: the one place that builds real adapters from `Settings`."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from classifier import ModelLoadError
from service.adapters.codec import Limits
from service.adapters.kafka import KafkaConfig, KafkaPipelineRunner
from service.adapters.sklearn_classifier import ModelClassifier
from service.domain.errors import ModerationError
from service.pipeline import Pipeline, Topics
from service.ports import Classifier, Clock
from service.settings import Settings

log = logging.getLogger(__name__)


class ModelUnavailable(ModerationError):
    pass


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Components:
    pipeline: Pipeline
    kafka: KafkaConfig


def build(settings: Settings, classifier: Classifier, clock: Clock | None = None) -> Components:
    topics = Topics(settings.topic_comments, settings.topic_decisions, settings.topic_dlq)
    pipeline = Pipeline(
        classifier,
        settings.policy,
        clock or SystemClock(),
        topics,
        Limits(settings.max_text_chars, settings.max_message_bytes),
    )
    kafka = KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic_comments,
        group_id=settings.group_id,
        transactional_id=settings.transactional_id,
        batch_max_records=settings.batch_max_records,
        retry_max_seconds=settings.kafka_retry_max_seconds,
    )
    return Components(pipeline, kafka)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the batch in hand is committed before exit."""
    try:
        model = ModelClassifier.load(settings.model_path)
    except ModelLoadError as exc:
        raise ModelUnavailable(
            f"cannot load the model at {settings.model_path}: {exc} "
            "(train one with `moderation train`)"
        ) from exc
    log.info(
        "model loaded", extra={"model_version": model.version, "path": str(settings.model_path)}
    )
    components = build(settings, model)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score") as executor:
        runner = KafkaPipelineRunner(components.kafka, components.pipeline, executor, stop)
        await runner.run()
    log.info("stopped")
    return 0
