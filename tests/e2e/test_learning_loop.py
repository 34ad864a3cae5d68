"""The learning loop end to end: comments queue, moderators decide 200 of them through the
API, `moderation retrain` prints the candidate's metrics and applies the promotion rule, and
the running service switches to the promoted model between batches while comments keep
coming: none lost, none decided twice."""

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

from service.model_registry import live_version
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
from tests.learning_fixtures import labelled_texts, verdict

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Every comment waits for a human (approve below 0, reject at 1), so 200 reach the queue.
EVERYTHING_TO_REVIEW = """
version = "all-to-review"
[defaults.thresholds]
spam = { approve_below = 0.0, reject_at = 1.0 }
abuse = { approve_below = 0.0, reject_at = 1.0 }
"""


def event(cid: str, text: str) -> tuple[bytes, bytes]:
    return f"herald:{cid}".encode(), json.dumps(
        {"id": cid, "site_id": "herald", "text": text}
    ).encode()


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
    policy = tmp_path / "policy.toml"
    policy.write_text(EVERYTHING_TO_REVIEW)
    labelled = labelled_texts()
    assert len(labelled) == 200
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
    streamed: list[str] = []
    stop_stream = asyncio.Event()

    async def stream() -> None:
        """Comments keep arriving while the model is retrained and swapped."""
        n = 0
        while not stop_stream.is_set():
            cid = f"s{n:05d}"
            key, value = event(cid, f"comment number {n} on the article")
            await producer.send_and_wait(topics.comments, value, key=key)
            streamed.append(cid)
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
            auto[doc["comment_id"]].append(doc)
            if doc["comment_id"].startswith("s"):
                by_partition[r["partition"]].append(doc["model_version"])
    # nothing lost, nothing decided twice
    expected = {f"q{i:03d}" for i in range(200)} | set(streamed)
    assert set(auto) == expected
    assert all(len(docs) == 1 for docs in auto.values())
    # each partition switches once, old model then new: never back, never mixed
    versions = {v for seq in by_partition.values() for v in seq}
    assert versions == {first_version, promoted}
    for seq in by_partition.values():
        switched = seq.index(promoted) if promoted in seq else len(seq)
        assert set(seq[:switched]) <= {first_version}
        assert set(seq[switched:]) <= {promoted}
    assert metrics[("moderation_model_info", (("version", promoted),))] == 1
    assert ("moderation_model_info", (("version", first_version),)) not in metrics
