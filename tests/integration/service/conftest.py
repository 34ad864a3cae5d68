"""Fixtures of the store tests: one migrated store per test, on each dialect in turn (and,
for `any_store`, the in-memory fake too)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.usecases.ports import ReviewStore
from tests.conftest import fresh_postgres_database
from tests.fakes_store import InMemoryReviewStore


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlReviewStore]:
    s = SqlReviewStore.from_url(database_url)
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReviewStore]:
    """The same suite on SQLite, PostgreSQL and the in-memory fake the HTTP tests use, so the
    fake cannot drift from the real stores."""
    if request.param == "fake":
        yield InMemoryReviewStore()
        return
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'store.db'}"
            if request.param == "sqlite"
            else stack.enter_context(
                fresh_postgres_database(request.getfixturevalue("postgres_url"))
            )
        )
        sql = SqlReviewStore.from_url(url)
        await sql.migrate()
        yield sql
        await sql.close()
