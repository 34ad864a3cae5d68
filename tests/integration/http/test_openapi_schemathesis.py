"""Schemathesis against the served OpenAPI document: the API, over the real SQLite store, never
answers with a server error or with a response the document does not describe.

The app runs as `serve` wires it (a policy file, the synchronous moderator, Coral's phase, the
Perspective-compatible API) over a fake model, so that the success answers of every route are
generated and checked too, not only the refusals: the admin token is the bearer, a site token
the Perspective key, and Coral's requests are signed with its secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import string
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from service.adapters.token_file import TokenRegistry
from service.bootstrap import build, http_app
from service.domain.access import Identity, Role
from service.domain.authors import AuthorMark, AuthorStatus
from service.domain.bulk import BulkAction, BulkItem, BulkStatus
from service.domain.model import (
    Action,
    Comment,
    Language,
    ModeratorReason,
    Reason,
    ReasonCode,
    Scores,
)
from service.domain.review import StoredComment
from service.entrypoints.http.app import app_runner
from service.entrypoints.http.openapi import document
from service.entrypoints.http.openapi.integrations import CORAL_PATH
from service.settings import Settings
from tests.http_helpers import ROOT, bearer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


SITE_KEY = "herald-cms-site-token-for-perspective"
CORAL_SECRET = b"whsec-schemathesis-0123456789"
POLICY_FILE = 'version = "p-2"\n[defaults.thresholds.abuse]\nreject_at = 0.8\n'
MAX_TEXT_CHARS = 2000
BUDGET_MS = 5000  # generous: a decision pending (503) would hide the success answer


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _English:
    """Every text is English: the generated texts are no language's, and an unsupported one
    would answer Perspective's error instead of the success body under test."""

    def detect(self, texts: Sequence[str]) -> list[Language]:
        return [Language("en", detected=True) for _ in texts]


class _Model:
    """Every verdict, by the text's length; abuse sub-scores for every other length."""

    version = "m-1"

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        out = []
        for c in comments:
            spam, abuse = (len(c.text) % 11) / 10, (len(c.text) % 7) / 6
            subs = abuse / 2 if len(c.text) % 2 else None
            out.append(Scores(spam, abuse, subs, subs, subs, subs, subs))
        return out


def _tokens() -> TokenRegistry:
    def entry(token: str, identity: Identity) -> tuple[Identity, str]:
        return identity, hashlib.sha256(token.encode()).hexdigest()

    return TokenRegistry(
        [
            entry(ROOT, Identity("root", Role.ADMIN, None)),
            entry(SITE_KEY, Identity("herald-cms", Role.SITE, frozenset({"herald"}))),
        ]
    )


class _CoralSignature(requests.auth.AuthBase):
    """Signs the body as Coral does, if the case sends the header at all (a negative case
    without it must go out without it)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "X-Coral-Signature" in request.headers:
            raw = request.body or b""
            raw = raw.encode() if isinstance(raw, str) else raw
            assert isinstance(raw, bytes), "schemathesis sends the body in one piece"
            digest = hmac.new(CORAL_SECRET, raw, hashlib.sha256).hexdigest()
            request.headers["X-Coral-Signature"] = f"sha256={digest}"
        return request


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
            + [_comment(12 + n, Action.REVIEW) for n in range(len(KNOWN_BULK))]
        )
        now = _Clock().now()
        for n, action_id in enumerate(KNOWN_BULK):  # pending for an hour: reading, undoing
            await store.create_bulk(_bulk(action_id, f"c-{12 + n}", now), hold_until=now + HOUR)
        for author in KNOWN_AUTHORS:  # so that reading and lifting one can succeed
            blocked = AuthorMark("herald", author, AuthorStatus.BLOCKED, None, "admin:root", now)
            await store.set_author_status(blocked)
        policy_file = self.db.parent / "policy.toml"
        policy_file.write_text(POLICY_FILE)
        settings = Settings.from_env(
            {
                "MODERATION_POLICY_FILE": str(policy_file),
                "MODERATION_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
                "MODERATION_CORAL_SECRETS": CORAL_SECRET.decode(),
                "MODERATION_CORAL_TIMEOUT_MS": str(BUDGET_MS * 2),
                "MODERATION_CORAL_BUDGET_MS": str(BUDGET_MS),
                "MODERATION_MODERATE_BUDGET_MS": str(BUDGET_MS),
                "MODERATION_PERSPECTIVE_BUDGET_MS": str(BUDGET_MS),
                "MODERATION_PERSPECTIVE_RATE": "1000000",
                "MODERATION_PERSPECTIVE_BURST": "1000000",
            }
        )
        parts = build(settings, _Model(), store, clock=_Clock(), language_detector=_English())
        executor = ThreadPoolExecutor(max_workers=1)
        app, moderator = http_app(settings, parts, store, _tokens(), executor)
        runner = app_runner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self.ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            await moderator.drain()
            executor.shutdown(wait=True)
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
    # document and the router agree is tests/unit/entrypoints/http's concern
    parsed = {(op.method.upper(), op.path) for op in operations}
    assert parsed == {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete"} and path != "/api/v1/openapi.json"
    }

    if mode is GenerationMode.NEGATIVE:  # only what takes input can be given invalid input
        operations = [op for op in operations if op.query or op.path_parameters or op.body]

    statuses: dict[str, set[int]] = {}
    for operation in operations:
        statuses[_name(operation)] = set()
        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = st.one_of(strategy, st.builds(_known, strategy, KNOWN_ITEMS, WORDS))

        @given(case=strategy)
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
            mangled = _negative_at(case, ParameterLocation.HEADER)
            response = case.call_and_validate(
                base_url=server.url,
                headers={} if mangled else _credentials(case),
                checks=CHECKS,
                timeout=10,
                auth=_CoralSignature(),
            )
            statuses[_name(case.operation)].add(response.status_code)

        conforms()

    if mode is GenerationMode.POSITIVE:  # every success answer was checked against its schema
        assert [op for op, codes in statuses.items() if 200 not in codes] == []


def _name(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _negative_at(case: Any, location: ParameterLocation) -> bool:
    return case._meta is not None and bool(case._meta.is_negative_at(location))


def _credentials(case: Any) -> dict[str, str]:
    """The bearer token, or for the Perspective routes the key: schemathesis generates the
    key itself (in `?key=` or the header, its security schemes); a valid one replaces it
    where the case is not meant to be invalid."""
    if not case.operation.path.startswith("/v1alpha1/"):
        return bearer(ROOT)
    if case.query and "key" in case.query:
        if not _negative_at(case, ParameterLocation.QUERY):
            case.query = {**case.query, "key": SITE_KEY}
        return {}
    return {"X-Goog-Api-Key": SITE_KEY}


# Known data for the cases that need it to succeed: the ids of queued items, a Coral comment
# on a known site, a Perspective comment of plain words for the key's own site (random ids,
# sites, texts and language tags are mostly refused or, in Coral's phase, answered 204).
KNOWN_ITEMS = st.sampled_from([f"c-{n}" for n in range(12) if n % 4])
KNOWN_AUTHORS = ("a-0", "a-1", "a-2")  # blocked on the herald
WORDS = st.text(alphabet=string.ascii_lowercase + " ", min_size=1, max_size=24)


KNOWN_BULK = tuple(f"{n:032x}" for n in range(1, 5))  # pending bulk actions, one item each
HOUR = timedelta(hours=1)


def _bulk(action_id: str, comment_id: str, now: datetime) -> BulkAction:
    return BulkAction(
        id=action_id,
        site_id="herald",
        moderator_id="root",
        action=Action.REJECT,
        reason=ModeratorReason.SPAM,
        reason_given=True,
        note=None,
        items=(BulkItem(comment_id),),
        status=BulkStatus.PENDING,
        created_at=now,
        apply_at=now + HOUR,
        finished_at=None,
    )


def _known(case: Any, comment_id: str, words: str) -> Any:
    if case.path_parameters and "action_id" in case.path_parameters:
        case.path_parameters = {"action_id": KNOWN_BULK[len(words) % len(KNOWN_BULK)]}
    if case.operation.path == "/api/v1/bulk-actions" and isinstance(case.body, dict):
        case.body = {
            "site_id": "herald",
            "comment_ids": [comment_id],
            "action": "reject",
            "reason": "spam",
        }
    if case.path_parameters and "comment_id" in case.path_parameters:
        case.path_parameters = {"site_id": "herald", "comment_id": comment_id}
    if case.path_parameters and "author_id" in case.path_parameters:
        author = KNOWN_AUTHORS[len(comment_id) % len(KNOWN_AUTHORS)]
        case.path_parameters = {"site_id": "herald", "author_id": author}
    if case.operation.path == CORAL_PATH and isinstance(case.body, dict):
        case.body = {**case.body, "site": {"id": "herald"}, "comment": {"body": f"<p>{words}</p>"}}
    if case.operation.path.startswith("/v1alpha1/") and isinstance(case.body, dict):
        body = {k: v for k, v in case.body.items() if k not in {"languages", "communityId"}}
        case.body = {**body, "comment": {"text": f"{words}."}}
        if "attributeScores" in body:  # suggestscore: a score to learn from
            case.body["attributeScores"] = {"SPAM": {"summaryScore": {"value": len(words) / 24}}}
    return case
