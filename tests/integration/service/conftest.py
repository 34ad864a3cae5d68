"""Fixtures of the store tests: one migrated store per test, on each dialect in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.adapters.sql.store import SqlReviewStore


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlReviewStore]:
    s = SqlReviewStore.from_url(database_url)
    await s.migrate()
    yield s
    await s.close()
