"""Shared fixtures. Tests that need Kafka fail (never skip) when the broker is not there."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.kafka_helpers import BOOTSTRAP, KafkaTopics


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.partition(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _reachable(BOOTSTRAP):
        pytest.fail(f"no Kafka broker at {BOOTSTRAP}: start it with `make kafka-up`")
    return BOOTSTRAP


@pytest.fixture
async def topics(kafka_bootstrap: str) -> KafkaTopics:
    return await KafkaTopics.create()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.classifier_fixtures import train_tiny_model  # noqa: PLC0415

    return train_tiny_model(tmp_path_factory.mktemp("model"))
