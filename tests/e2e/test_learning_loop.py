"""The learning loop end to end: comments queue, the herald's moderators decide 200 of them
through the API (their house rule: "muppet" is abuse), `moderation retrain` prints the
candidate's metrics and applies the promotion rule, and the running service switches to the
promoted model between batches while comments of the herald and the gazette keep coming: none
lost, none decided twice, the herald's scores follow its moderators and the gazette's do not
move at all."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from service.adapters.model_registry import live_version
from service.domain.feedback import TrainingLabel
from tests.kafka_helpers import (
    BOOTSTRAP,
    ROOT,
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    kcat_consume,
    kcat_produce,
    wait_until,
)
from tests.learning_fixtures import verdict
from tests.site_fixtures import house_rule_labels, probes

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Every comment waits for a human (approve below 0, reject at 1), so 200 reach the queue.
EVERYTHING_TO_REVIEW = """
version = "all-to-review"
[defaults.thresholds]
spam = { approve_below = 0.0, reject_at = 1.0 }
abuse = { approve_below = 0.0, reject_at = 1.0 }
"""


def event(cid: str, text: str, site: str = "herald") -> tuple[bytes, bytes]:
    return f"{site}:{cid}".encode(), json.dumps({"id": cid, "site_id": site, "text": text}).encode()


async def api(service: ServiceProcess, method: str, path: str, body: Any = None) -> Any:
    url = f"http://127.0.0.1:{service.http_port}/api/v1{path}"
    headers = {"Authorization": f"Bearer {service.admin_token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, url, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def retrain(service: ServiceProcess) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "retrain",
        cwd=ROOT,
        env={**os.environ, **service.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return subprocess.CompletedProcess([], process.returncode, out.decode(), err.decode())


async def test_moderator_labels_retrain_promote_and_the_service_swaps_between_batches(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    first_version = live_version(model)
    assert first_version is not None
    policy = tmp_path / "policy.toml"
    policy.write_text(EVERYTHING_TO_REVIEW)
    labelled = [(r["text"], TrainingLabel(r["label"])) for r in house_rule_labels("herald")]
    assert len(labelled) == 200
    _, house = probes()
    kcat_produce(
        topics.comments,
        [event(f"q{i:03d}", text) for i, (text, _) in enumerate(labelled)],
        tmp_path,
    )
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(model),
            "MODERATION_POLICY_FILE": str(policy),
            "MODERATION_MODEL_RELOAD_SECONDS": "0.5",
            "MODERATION_BATCH_MAX_RECORDS": "20",
        },
        tmp_path / "service.log",
    )
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    streamed: list[tuple[str, str]] = []  # (site, comment id)
    stop_stream = asyncio.Event()

    async def stream() -> None:
        """Comments with the house word keep arriving on both sites while the model is
        retrained and swapped: comment n of each site has the same text."""
        n = 0
        while not stop_stream.is_set():
            for site in ("herald", "gazette"):
                cid = f"s{n:05d}"
                key, value = event(cid, house[n % len(house)], site)
                await producer.send_and_wait(topics.comments, value, key=key)
                streamed.append((site, cid))
            n += 1
            await asyncio.sleep(0.01)

    try:
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments), 120, "the queue filled"
        )
        stats = await api(service, "GET", "/stats?site=herald")
        assert stats["sites"][0]["depth"] == 200

        # moderators decide all 200 through the API, in bulk pages of 100
        decisions = [
            {"site_id": "herald", "comment_id": f"q{i:03d}", **verdict(label)}
            for i, (_, label) in enumerate(labelled)
        ]
        for page in (decisions[:100], decisions[100:]):
            result = await api(service, "POST", "/decisions", {"decisions": page})
            assert all(r["error"] is None for r in result["results"]), result

        await producer.start()
        streaming = asyncio.create_task(stream())
        await wait_until(lambda: asyncio.sleep(0, len(streamed) > 50), 60, "the stream to start")
        done = await retrain(service)
        print(done.stdout)  # the candidate's metrics, in the test log
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verdict: PROMOTED" in done.stdout
        for column in ("auc live", "auc cand", "brier live", "brier cand", "held live"):
            assert column in done.stdout
        promoted = live_version(model)
        assert promoted is not None
        assert promoted != first_version

        async def swapped() -> bool:
            return any(
                e.get("event") == "model swapped" and e.get("model_version") == promoted
                for e in service.logs()
            )

        await wait_until(swapped, 60, "the service to swap models")
        at_swap = len(streamed)
        await wait_until(
            lambda: asyncio.sleep(0, len(streamed) > at_swap + 50), 60, "more comments"
        )
        stop_stream.set()
        await streaming
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments), 120, "the stream decided"
        )
        metrics = await service.metrics()
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
    finally:
        stop_stream.set()
        await producer.stop()
        service.ensure_dead()

    records = kcat_consume(topics.decisions)
    auto = defaultdict(list)
    by_partition: dict[int, list[str]] = defaultdict(list)
    for r in records:
        doc = json.loads(r["payload"])
        if doc["decided_by"] == "auto":
            auto[doc["site_id"], doc["comment_id"]].append(doc)
            if doc["comment_id"].startswith("s"):
                by_partition[r["partition"]].append(doc["model_version"])
    # nothing lost, nothing decided twice
    expected = {("herald", f"q{i:03d}") for i in range(200)} | set(streamed)
    assert set(auto) == expected
    assert all(len(docs) == 1 for docs in auto.values())
    # the same texts, by model: the herald's abuse scores rose, the gazette's stayed exactly
    abuse: dict[tuple[str, str, str], set[float]] = defaultdict(set)
    for (site, cid), [doc] in auto.items():
        if cid.startswith("s"):
            text = house[int(cid[1:]) % len(house)]
            abuse[site, text, doc["model_version"]].add(doc["scores"]["abuse"])
    gazette_compared, rises = 0, []
    for text in house:
        old, new = (abuse.get(("gazette", text, v)) for v in (first_version, promoted))
        if old and new:
            assert old == new, text  # one score per text, before and after
            gazette_compared += 1
        herald_old, herald_new = (abuse.get(("herald", text, v)) for v in (first_version, promoted))
        if herald_old and herald_new:
            [before], [after] = herald_old, herald_new
            rises.append(after - before)
    assert gazette_compared >= 2
    assert len(rises) >= 2
    assert sum(rises) / len(rises) > 0.1, rises
    # each partition switches once, old model then new: never back, never mixed
    versions = {v for seq in by_partition.values() for v in seq}
    assert versions == {first_version, promoted}
    for seq in by_partition.values():
        switched = seq.index(promoted) if promoted in seq else len(seq)
        assert set(seq[:switched]) <= {first_version}
        assert set(seq[switched:]) <= {promoted}
    assert metrics[("moderation_model_info", (("version", promoted),))] == 1
    assert ("moderation_model_info", (("version", first_version),)) not in metrics
