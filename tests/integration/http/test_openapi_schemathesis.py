"""Schemathesis against the served OpenAPI document: the API, over the real SQLite store, never
answers with a server error or with a response the document does not describe."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.adapters.sql.store import SqlReviewStore
from service.domain.model import Action, Reason, ReasonCode, Scores
from service.domain.review import StoredComment
from service.http.app import app_runner, build_app
from service.http.openapi import document
from service.review_service import ReviewService
from tests.http_helpers import ROOT, bearer, registry

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _comment(n: int, action: Action) -> StoredComment:
    at = datetime.now(UTC) - timedelta(minutes=n)
    return StoredComment(
        site_id="herald",
        comment_id=f"c-{n}",
        text=f"<b>comment {n}</b>",
        author_id=f"a-{n % 3}",
        author_name="<script>alert(1)</script>",
        thread_id=None,
        created_at=at,
        scores=Scores(spam=0.6, abuse=0.2),
        reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "spam in between"),),
        action=action,
        model_version="m-1",
        policy_version="env-1",
        decided_at=at,
        event_json="{}",
    )


@dataclass
class _Server:
    url: str


class _ServerThread(threading.Thread):
    """The API over a fresh SQLite store, on its own event loop: schemathesis calls it
    synchronously from the test's thread."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.port = 0
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        store = SqlReviewStore.from_url(f"sqlite:///{self.db}")
        await store.migrate()
        await store.record_decisions(
            [_comment(n, Action.REVIEW if n % 4 else Action.APPROVE) for n in range(12)]
        )
        service = ReviewService(store, _Clock(), decisions_topic="decisions")
        runner = app_runner(build_app(service, registry()))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self.ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            await store.close()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    thread = _ServerThread(tmp_path_factory.mktemp("schemathesis") / "moderation.db")
    thread.start()
    assert thread.ready.wait(30), "the API server did not start"
    yield _Server(f"http://127.0.0.1:{thread.port}")
    thread.stop()


@pytest.fixture(scope="module")
def api_schema(server: _Server) -> Any:
    return schemathesis.openapi.from_url(
        f"{server.url}/api/v1/openapi.json", headers=bearer(ROOT), timeout=10
    )


# schemathesis' own pytest plugin (`from_fixture(...).parametrize()`) does not run under
# pytest 9, so each operation's strategy drives a plain Hypothesis test here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(
    api_schema: Any, server: _Server, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # schemathesis parsed every operation of the document (none silently dropped); that the
    # document and the router agree is tests/unit/http's concern
    parsed = {(op.method.upper(), op.path) for op in operations}
    assert parsed == {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in {"get", "post"} and path != "/api/v1/openapi.json"  # that one serves it
    }

    if mode is GenerationMode.NEGATIVE:  # only what takes input can be given invalid input
        operations = [op for op in operations if op.query or op.path_parameters or op.body]

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            # A negative case may drop or mangle the Authorization header: then it must go out
            # as generated (and be refused), not be mended by our token.
            mangled = case._meta is not None and case._meta.is_negative_at(ParameterLocation.HEADER)
            case.call_and_validate(
                base_url=server.url,
                headers={} if mangled else bearer(ROOT),
                checks=CHECKS,
                timeout=10,
            )

        conforms()
