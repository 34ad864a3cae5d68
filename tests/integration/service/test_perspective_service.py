"""The Perspective-compatible API of `moderation serve` (real Kafka, real SQLite, the tiny
trained model), driven by an unmodified third-party client (the npm package
`perspective-api-client`, only its host redirected) and by Coral's exact request bytes.
`doNotStore` is checked byte for byte: the store's files, every topic and the log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import add_token
from service.domain.feedback import ReasonSource, TrainingLabel
from service.usecases.perspective.api import comment_id
from tests.kafka_helpers import KafkaTopics, ServiceProcess, kcat_consume, wait_until
from tests.node_packages import install_node_packages

PRODUCTION = ["TOXICITY", "SEVERE_TOXICITY", "INSULT", "PROFANITY", "THREAT", "IDENTITY_ATTACK"]
TOXIC = "You are a stupid idiot and I hate you, moron."
CLEAN = "Thank you for this thoughtful article about the city budget."
SPAM = "Buy cheap viagra now!!! Visit http://cheap-pills.example for discount pills"

pytestmark = pytest.mark.kafka


@dataclass(frozen=True)
class Service:
    process: ServiceProcess
    topics: KafkaTopics
    state: Path
    keys: dict[str, str]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.process.http_port}"

    def database_url(self) -> str:
        return f"sqlite:///{self.state / 'moderation.db'}"

    def store_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.state.glob("moderation.db*")))

    def log_bytes(self) -> bytes:
        return self.process.log_path.read_bytes()

    def topic_bytes(self) -> bytes:
        """Every record of every topic the service writes or reads, as kcat shows it."""
        names = [self.topics.decisions, self.topics.dlq, self.topics.shadow, self.topics.comments]
        return json.dumps(
            [kcat_consume(t, read_committed=False) for t in names], ensure_ascii=False
        ).encode()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def service(
    kafka_bootstrap: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    state = tmp_path_factory.mktemp("perspective-service")
    topics = asyncio.run(KafkaTopics.create())
    tokens = state / "tokens.json"
    add_token(tokens, "root", "admin", ["*"])
    keys = {
        "herald": add_token(tokens, "herald-cms", "site", ["herald"]),
        "network": add_token(tokens, "network-cms", "site", ["herald", "tech-blog"]),
    }
    process = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(tiny_model),
            "MODERATION_TOKENS_FILE": str(tokens),
            "MODERATION_LOG_LEVEL": "DEBUG",  # whatever is logged, the text must not be
            "MODERATION_PERSPECTIVE_RATE": "1000",
            "MODERATION_PERSPECTIVE_BURST": "1000",
        },
        state / "service.log",
    )
    try:
        deadline = time.monotonic() + 120
        while not _ready(process.http_port):
            assert process.proc.poll() is None, process.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield Service(process, topics, state, keys)
    finally:
        process.proc.send_signal(signal.SIGTERM)
        try:
            process.proc.wait(timeout=30)
        finally:
            process.ensure_dead()


@pytest.fixture(scope="module")
def perspective_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `perspective-api-client` installed from tests/node's lockfile."""
    return install_node_packages(tmp_path_factory.mktemp("node-client"), "perspective_client.js")


def run_client(folder: Path, service: Service, calls: list[dict[str, Any]]) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(folder / "perspective_client.js")],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PERSPECTIVE_ORIGIN": service.origin,
            "PERSPECTIVE_CALLS": json.dumps(calls),
        },
        check=True,
        timeout=120,
        capture_output=True,
    )
    answers: dict[str, Any] = json.loads(result.stdout)
    return answers


def summary(answer: dict[str, Any], attribute: str) -> float:
    score = answer["data"]["attributeScores"][attribute]["summaryScore"]
    assert score["type"] == "PROBABILITY"
    value = score["value"]
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0
    return value


def google_error(answer: dict[str, Any], status: int) -> str:
    assert answer["ok"] is False
    assert answer["name"] == "ResponseError"  # the client's own error for an API answer
    assert answer["status"] == status
    error = answer["data"]["error"]
    assert (error["code"], error["status"]) == (status, "INVALID_ARGUMENT")
    assert answer["message"] == error["message"]  # what the client tells its caller
    message: str = error["message"]
    return message


def test_an_unmodified_perspective_client_gets_perspectives_answers(
    service: Service, perspective_client: Path
) -> None:
    every = [*PRODUCTION, "SPAM"]
    key = service.keys["herald"]
    answers = run_client(
        perspective_client,
        service,
        [
            {"name": "toxic", "key": key, "text": TOXIC, "options": {"attributes": every}},
            {"name": "clean", "key": key, "text": CLEAN, "options": {"attributes": every}},
            {"name": "spam", "key": key, "text": SPAM, "options": {"attributes": every}},
            {
                "name": "html",
                "key": key,
                "text": {"comment": {"text": f"<p>{TOXIC[:22]} <b>{TOXIC[22:]}</b></p>"}},
                "options": {"attributes": ["TOXICITY"], "stripHTML": False},
            },
            {
                "name": "html_typed",
                "key": key,
                "text": {
                    "comment": {"text": f"<p>{TOXIC[:22]}<b>{TOXIC[22:]}</b></p>", "type": "HTML"}
                },
                "options": {"attributes": ["TOXICITY"], "stripHTML": False},
            },
            {"name": "stripped", "key": key, "text": f"<p>{TOXIC}</p>", "options": {}},
            {"name": "bad_key", "key": "not-our-key", "text": CLEAN, "options": {}},
            {
                "name": "unknown",
                "key": key,
                "text": CLEAN,
                "options": {"attributes": ["FLIRTATION"]},
            },
            {
                "name": "german",
                "key": key,
                "text": {"comment": {"text": "Du bist ein Idiot"}, "languages": ["de"]},
                "options": {"attributes": ["TOXICITY"]},
            },
        ],
    )

    for name in ("toxic", "clean", "spam"):
        assert answers[name]["ok"], answers[name]
        assert set(answers[name]["data"]["attributeScores"]) == set(every)
        for attribute in every:
            summary(answers[name], attribute)
    assert summary(answers["toxic"], "TOXICITY") > summary(answers["clean"], "TOXICITY")
    assert summary(answers["toxic"], "INSULT") > summary(answers["clean"], "INSULT")
    assert summary(answers["spam"], "SPAM") > summary(answers["clean"], "SPAM")
    # typed HTML is scored as its text: the same as the text the client stripped itself
    text_only = summary(answers["stripped"], "TOXICITY")  # the client stripped the tags
    assert summary(answers["html_typed"], "TOXICITY") == pytest.approx(text_only, abs=1e-6)
    assert answers["stripped"]["data"]["attributeScores"].keys() == {"TOXICITY"}  # its default
    assert "API key not valid" in google_error(answers["bad_key"], 400)
    assert "Unknown attribute" in google_error(answers["unknown"], 400)
    assert "does not support request languages: de" in google_error(answers["german"], 400)
    assert answers["html"]["ok"]  # markup sent as plain text is scored as it is


async def test_corals_exact_perspective_requests_are_answered(service: Service) -> None:
    # coral: services/perspective/perspective.ts: compact JSON, the key in the query string,
    # the endpoint "<our origin>/v1alpha1" pasted into Coral's custom endpoint field
    analyze = json.dumps(
        {
            "comment": {"text": "Très bien, mais tu es un idiot"},
            "doNotStore": True,
            "requestedAttributes": {"TOXICITY": {}},
            "languages": ["en"],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    coral_id = str(uuid.uuid4())
    suggest = json.dumps(
        {
            "comment": {"text": "Très bien, mais tu es un idiot"},
            "context": {
                "entries": [
                    {
                        "text": json.dumps(
                            {
                                "url": f"https://herald.example/a/1?commentID={coral_id}",
                                "Coral_comment_id": coral_id,
                            },
                            separators=(",", ":"),
                        )
                    }
                ]
            },
            "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
            "languages": ["en"],
            "communityId": "Coral:https://herald.example",
            "clientToken": f"comment:{coral_id}",
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    headers = {"Content-Type": "application/json"}
    query = f"?key={service.keys['herald']}"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{service.origin}/v1alpha1/comments:analyze{query}", data=analyze, headers=headers
        ) as response:
            assert response.status == 200
            scored = await response.json()
        async with session.post(
            f"{service.origin}/v1alpha1/comments:suggestscore{query}", data=suggest, headers=headers
        ) as response:
            assert response.status == 200
            suggested = await response.json()

    # what Coral's toxic phase reads
    value = scored["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0
    assert scored["languages"] == ["en"]
    assert suggested["clientToken"] == f"comment:{coral_id}"
    store = SqlReviewStore.from_url(service.database_url())
    try:
        labels = await store.labels(site_id="herald")
    finally:
        await store.close()
    wanted = comment_id(f"comment:{coral_id}", "Très bien, mais tu es un idiot")
    [label] = [e for e in labels if e.comment_id == wanted]
    assert (label.label, label.reason_source) == (TrainingLabel.ABUSE, ReasonSource.GUESSED)
    assert label.text == "Très bien, mais tu es un idiot"


async def test_do_not_store_leaves_no_trace_in_the_store_the_topics_or_the_logs(
    service: Service,
) -> None:
    secret = f"zq{uuid.uuid4().hex[:12]}"
    kept = f"zk{uuid.uuid4().hex[:12]}"
    url = f"{service.origin}/v1alpha1/comments:analyze?key={service.keys['herald']}"
    documents = [
        {"comment": {"text": f"{secret} you idiot"}, "requestedAttributes": {"TOXICITY": {}}},
        {
            "comment": {"text": f"<p>{secret} <b>buy pills</b></p>", "type": "HTML"},
            "requestedAttributes": {"SPAM": {}, "INSULT": {}},
            "clientToken": f"{secret}-token",
            "spanAnnotations": True,
        },
        {
            "comment": {"text": f"{secret}. Second sentence here."},
            "requestedAttributes": {"TOXICITY": {"scoreThreshold": 0.0}},
            "spanAnnotations": True,
            "communityId": secret,
        },
        {"comment": {"text": f"{secret} unsupported"}, "requestedAttributes": {"FLIRTATION": {}}},
    ]
    async with aiohttp.ClientSession() as session:
        for document in documents:
            async with session.post(url, json={**document, "doNotStore": True}) as response:
                assert response.status in (200, 400)
        # the control: the same kind of call, allowed to store
        control = {"comment": {"text": f"{kept} maybe"}, "requestedAttributes": {"TOXICITY": {}}}
        async with session.post(url, json={**control, "clientToken": kept}) as response:
            assert response.status == 200
    decided = comment_id(kept, f"{kept} maybe")

    async def control_published() -> bool:
        return decided.encode() in service.topic_bytes()

    await wait_until(control_published, 60, "the stored call's decision on the topic", every=1)
    assert kept.encode() in service.store_bytes()  # the checks below can see a stored text
    assert secret.encode() not in service.store_bytes()
    assert secret.encode() not in service.topic_bytes()
    assert secret.encode() not in service.log_bytes()
    metrics = await service.process.metrics()
    counted = metrics[
        ("moderation_perspective_requests_total", (("method", "analyze"), ("outcome", "ok")))
    ]
    assert counted >= 4


async def test_a_suggestion_lands_as_a_label_of_the_site_its_key_and_community_name(
    service: Service,
) -> None:
    text = f"label-{uuid.uuid4().hex[:8]} buy cheap pills"
    url = f"{service.origin}/v1alpha1/comments:suggestscore"
    suggestion = {
        "comment": {"text": text},
        "attributeScores": {"SPAM": {"summaryScore": {"value": 1.0}}},
        "communityId": "tech-blog",
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, params={"key": service.keys["network"]}, json=suggestion
        ) as response:
            assert response.status == 200
        async with session.post(
            url, params={"key": service.keys["network"]}, json={**suggestion, "communityId": "x"}
        ) as response:
            assert response.status == 403
            assert (await response.json())["error"]["status"] == "PERMISSION_DENIED"

    store = SqlReviewStore.from_url(service.database_url())
    try:
        tech = [e for e in await store.labels(site_id="tech-blog") if e.text == text]
        herald = [e for e in await store.labels(site_id="herald") if e.text == text]
    finally:
        await store.close()
    [label] = tech
    assert herald == []
    assert (label.label, label.reason_source) == (TrainingLabel.SPAM, ReasonSource.MODERATOR)
    assert label.labelled_by == "perspective:network-cms"
