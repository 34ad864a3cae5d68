"""The service's /metrics as Prometheus sees it: a real `prometheus` server scrapes a running
service, `promtool check metrics` lints a real scrape, and the counters match what was sent."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    free_port,
    kcat_consume,
    kcat_produce,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Thresholds that send every comment to review, so the queue gauges must move.
ALL_TO_REVIEW = {
    "MODERATION_SPAM_APPROVE_BELOW": "0",
    "MODERATION_SPAM_REJECT_AT": "1",
    "MODERATION_ABUSE_APPROVE_BELOW": "0",
    "MODERATION_ABUSE_REJECT_AT": "1",
}
MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "invalid_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'{"id": "m-1", "text": "no site"}', "missing_field"),
    (b'{"id": "m-2", "text": "no site either"}', "missing_field"),
]


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's `prometheus` package")
    return path


def comments(count: int, site: str = "herald") -> list[tuple[bytes | None, bytes]]:
    return [
        (
            f"{site}:c-{n}".encode(),
            json.dumps(
                {
                    "id": f"c-{n}",
                    "site_id": site,
                    "text": f"Thanks for the report on the council vote (#{n})",
                    "created_at": "2026-11-27T10:00:00Z",
                }
            ).encode(),
        )
        for n in range(count)
    ]


@contextmanager
def prometheus_scraping(target_port: int, workdir: Path) -> Iterator[int]:
    """A Prometheus server on a free loopback port scraping the service every second."""
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: moderation\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
        encoding="utf-8",
    )
    command = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    # the log is closed whatever happens: a file left open surfaces as a ResourceWarning
    # (an error here) in whichever test runs next
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def promtool_check_metrics(exposition: str) -> None:
    """`promtool check metrics` reads the exposition on stdin and lints it."""
    lint = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=exposition.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()


async def get_json(url: str, **params: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        return await response.json()


async def instant(port: int, query: str) -> float | None:
    """The value of a one-series instant query, or None while it has no result."""
    try:
        body = await get_json(f"http://127.0.0.1:{port}/api/v1/query", query=query)
    except aiohttp.ClientError:
        return None  # not listening yet
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def scrape(service: ServiceProcess) -> str:
    url = f"http://127.0.0.1:{service.http_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def test_prometheus_scrapes_decisions_and_review_queue_from_the_service(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    service = ServiceProcess(
        topics.env() | ALL_TO_REVIEW | {"MODERATION_MODEL_PATH": str(tiny_model)},
        tmp_path / "service.log",
    )
    try:
        with prometheus_scraping(service.http_port, tmp_path) as port:
            await wait_until(
                lambda: _value_is(port, 'up{job="moderation"}', 1.0),
                60,
                "Prometheus to scrape the service successfully",
            )
            assert await instant(port, "sum(moderation_decisions_total)") == 0
            kcat_produce(topics.comments, comments(12), tmp_path)
            await wait_until(
                lambda: _value_is(port, "sum(moderation_decisions_total)", 12.0),
                90,
                "Prometheus to see 12 decisions",
            )
            await wait_until(
                lambda: _value_is(port, 'moderation_review_queue_depth{site_id="herald"}', 12.0),
                60,
                "Prometheus to see 12 comments waiting for review on herald",
            )
            assert (
                await instant(port, 'moderation_decisions_total{action="review",decided_by="auto"}')
                == 12.0
            )
            age = await instant(
                port, 'moderation_review_queue_oldest_age_seconds{site_id="herald"}'
            )
            assert age is not None
            assert age >= 0
            assert await instant(port, "count(moderation_model_info)") == 1.0
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()


async def _value_is(port: int, query: str, expected: float) -> bool:
    return await instant(port, query) == expected


async def test_metrics_count_exactly_what_was_consumed_and_pass_promtool(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    valid = comments(40, site="tech-blog")
    lines = valid[:20] + [(b"bad", value) for value, _ in MALFORMED] + valid[20:]
    kcat_produce(topics.comments, lines, tmp_path)
    service = ServiceProcess(
        topics.env() | {"MODERATION_MODEL_PATH": str(tiny_model)}, tmp_path / "service.log"
    )
    try:
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments),
            90,
            "the service to commit past all 44 comments",
        )

        async def counted_all() -> bool:
            metrics = await service.metrics()
            return metrics.get(("moderation_comments_consumed_total", ())) == 44

        await wait_until(counted_all, 30, "/metrics to count 44 consumed comments")
        body = await scrape(service)
        metrics = await service.metrics()
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        service.ensure_dead()

    promtool_check_metrics(body)

    decisions = Counter(json.loads(d["payload"])["action"] for d in kcat_consume(topics.decisions))
    assert sum(decisions.values()) == 40
    for action in ("approve", "reject", "review"):
        key = ("moderation_decisions_total", (("action", action), ("decided_by", "auto")))
        assert metrics[key] == decisions[action]
    dead = Counter(reason for _, reason in MALFORMED)
    for reason, count in dead.items():
        assert metrics[("moderation_dead_letters_total", (("reason", reason),))] == count
    total_dead = sum(v for k, v in metrics.items() if k[0] == "moderation_dead_letters_total")
    assert total_dead == 4
    assert metrics[("moderation_batches_total", ())] >= 1
    assert sum(v for k, v in metrics.items() if k[0] == "moderation_consumer_lag_records") == 0
    assert (
        metrics[("moderation_scoring_duration_seconds_count", ())]
        == metrics[("moderation_batches_total", ())]
    )
