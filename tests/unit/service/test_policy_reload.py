"""Reloading the policy at run time: the admin route, refusals, and the audit log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from classifier import normalize
from service.adapters.policy_file import PolicyFile
from service.domain.policy import Policy, SitePolicy, Thresholds
from service.entrypoints.http.app import build_app
from service.usecases.policy_control import PolicyControl
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock
from tests.fakes_store import InMemoryReviewStore
from tests.http_helpers import ALICE, ROOT, bearer, registry

BASE = SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))
V1 = 'version = "v1"\n[defaults.thresholds.abuse]\nreject_at = 0.9\n'
V2 = 'version = "v2"\n[defaults.thresholds.abuse]\nreject_at = 0.7\n'


def control(path: Path | None, store: InMemoryReviewStore, seen: list[Policy]) -> PolicyControl:
    return PolicyControl(
        None if path is None else PolicyFile(path, normalize, BASE),
        fallback=Policy("env-1", BASE),
        store=store,
        clock=FixedClock(),
        on_change=seen.append,
    )


async def client_for(
    policy: PolicyControl | None, store: InMemoryReviewStore
) -> TestClient[Request, Application]:
    review = ReviewService(
        store, FixedClock(), decisions_topic="d", claim_lease=timedelta(seconds=60)
    )
    client = TestClient(TestServer(build_app(review, registry(), policy=policy)))
    await client.start_server()
    return client


async def test_an_admin_reloads_the_policy_and_the_change_is_audited(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(V1)
    store, seen = InMemoryReviewStore(), list[Policy]()
    policy = control(path, store, seen)
    assert policy.load().version == "v1"
    path.write_text(V2)
    client = await client_for(policy, store)
    try:
        response = await client.post("/api/v1/admin/policy/reload", json={}, headers=bearer(ROOT))
        body = await response.json()
    finally:
        await client.close()

    assert response.status == 200
    assert body == {
        "before": "v1",
        "after": "v2",
        "changes": "defaults.thresholds.abuse.reject_at: 0.9 -> 0.7; version: 'v1' -> 'v2'",
    }
    assert [p.version for p in seen] == ["v2"]  # the pipeline was told
    assert policy.policy.default.abuse.reject_at == 0.7
    [entry] = (await store.audit_log(None)).items
    assert (entry.actor, entry.action) == ("admin:root", "policy_reload")
    assert "version v1 -> v2" in entry.detail


async def test_a_bad_file_changes_nothing_and_is_audited(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(V1)
    store, seen = InMemoryReviewStore(), list[Policy]()
    policy = control(path, store, seen)
    policy.load()
    path.write_text('version = "v3"\n[defaults.thresholds.abuse]\nreject_at = "high"\n')
    client = await client_for(policy, store)
    try:
        response = await client.post("/api/v1/admin/policy/reload", json={}, headers=bearer(ROOT))
        body = await response.json()
    finally:
        await client.close()

    assert response.status == 400
    assert body["error"]["code"] == "invalid_policy"
    assert "defaults.thresholds.abuse.reject_at: must be a number" in body["error"]["message"]
    assert policy.policy.version == "v1"
    assert seen == []
    [entry] = (await store.audit_log(None)).items
    assert entry.action == "policy_reload_failed"


async def test_only_admins_reload_and_only_with_a_policy_file(tmp_path: Path) -> None:
    store: InMemoryReviewStore = InMemoryReviewStore()
    with_file = await client_for(control(tmp_path / "p.toml", store, []), store)
    without = await client_for(None, store)
    try:
        moderator = await with_file.post(
            "/api/v1/admin/policy/reload", json={}, headers=bearer(ALICE)
        )
        nothing = await without.post("/api/v1/admin/policy/reload", json={}, headers=bearer(ROOT))
        assert (moderator.status, (await moderator.json())["error"]["code"]) == (
            403,
            "forbidden_role",
        )
        assert (nothing.status, (await nothing.json())["error"]["code"]) == (409, "no_policy_file")
    finally:
        await with_file.close()
        await without.close()
