"""`serve --workers N`: its setting, the ids each worker gets, and the host's merged metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.entrypoints.serve.front import UPSTREAMS, Upstream, merge_metrics, pick
from service.entrypoints.serve.workers import WorkerRole, worker_env
from service.settings import Settings, SettingsError


def exposition(consumed: float) -> str:
    registry = CollectorRegistry()
    Counter("moderation_comments_consumed", "Consumed.", registry=registry).inc(consumed)
    return generate_latest(registry).decode()


def test_workers_default_to_one_and_are_validated(tmp_path: Path) -> None:
    assert Settings.from_env({}, cwd=tmp_path).workers == 1
    assert Settings.from_env({"MODERATION_WORKERS": "4"}, cwd=tmp_path).workers == 4
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError, match="MODERATION_WORKERS"):
            Settings.from_env({"MODERATION_WORKERS": bad}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="--workers"):
        Settings.from_env({}, cwd=tmp_path).with_workers(65)
    assert Settings.from_env({}, cwd=tmp_path).with_workers(2).workers == 2


def test_each_worker_gets_ids_derived_from_the_instance(tmp_path: Path) -> None:
    settings = Settings.from_env({"MODERATION_INSTANCE_ID": "pod-3"}, cwd=tmp_path)
    env = worker_env(settings.with_workers(2), 1, 4321, {"OTHER": "kept"})
    assert env["MODERATION_INSTANCE_ID"] == "pod-3-w1"
    assert env["MODERATION_TRANSACTIONAL_ID"] == "moderation-pod-3-w1"
    assert env["MODERATION_WORKERS"] == "1"
    assert env["MODERATION_HTTP_PORT"] == "4321"
    assert env["OTHER"] == "kept"


def test_an_instance_id_too_long_for_its_worker_suffix_is_refused(tmp_path: Path) -> None:
    long_id = "x" * 198
    with pytest.raises(SettingsError, match="INSTANCE_ID"):
        Settings.from_env(
            {
                "MODERATION_INSTANCE_ID": long_id,
                "MODERATION_TRANSACTIONAL_ID": "t",
                "MODERATION_WORKERS": "2",
            },
            cwd=tmp_path,
        )


def test_worker_role_round_trips_through_its_command_line_form() -> None:
    role = WorkerRole(3, 100, 7)
    assert WorkerRole.parse(role.encode()) == role
    assert role.name == "w3"


def test_merged_metrics_label_every_sample_with_its_worker_and_type_each_family_once() -> None:
    merged = merge_metrics({"w0": exposition(3), "w1": exposition(4), "w2": None}).decode()
    assert merged.count("# TYPE moderation_comments_consumed_total counter") == 1
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(merged)
        for s in family.samples
    }
    assert samples[("moderation_comments_consumed_total", (("worker", "w0"),))] == 3
    assert samples[("moderation_comments_consumed_total", (("worker", "w1"),))] == 4
    assert samples[("moderation_worker_up", (("worker", "w1"),))] == 1
    assert samples[("moderation_worker_up", (("worker", "w2"),))] == 0


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_a_perspective_key_reaches_one_worker_wherever_the_request_carries_it(
    workers: int,
) -> None:
    # each worker keeps its own rate-limit bucket: a key spread over N workers would get N x
    app = web.Application()
    app[UPSTREAMS] = tuple(Upstream(f"w{i}", 9000 + i) for i in range(workers))

    def worker(path: str, headers: dict[str, str]) -> str:
        return pick(make_mocked_request("POST", path, headers=headers, app=app)).name

    for key in (f"key-{n}" for n in range(20)):
        in_query = worker(f"/v1alpha1/comments:analyze?key={key}", {})
        in_header = {worker("/v1alpha1/comments:analyze", {"X-Goog-Api-Key": key}) for _ in "abc"}
        assert in_header == {in_query}
