"""Shared fixtures. Tests that need Kafka fail (never skip) when the broker is not there."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

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


PG_URL = os.environ.get(
    "MODERATION_TEST_DATABASE_URL", "postgresql://moderation:moderation@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server tests create their databases on. Missing server: fail, never skip."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL at {PG_URL} ({exc}): start it with `make pg-up`")
    return PG_URL


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server; dropped afterwards."""
    name = f"moderation_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield str(conninfo_to_url(server_url, name))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def conninfo_to_url(server_url: str, dbname: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same tests, once per store dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url
