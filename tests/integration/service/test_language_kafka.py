"""Languages through the real service, store and broker: the real detector (py3langid) and the
trained model, comments from kcat, decisions read back with kcat."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.adapters.sql.store import SqlReviewStore
from tests.kafka_helpers import (
    KafkaTopics,
    ServiceProcess,
    all_consumed,
    kcat_consume,
    kcat_produce,
    wait_until,
)
from tests.schemas import validate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Scores never decide here (approve below 0.999, reject at 1.0): only the languages do. The
# tech-blog approves what it cannot read.
POLICY = """
version = "languages-1"
[defaults.thresholds]
spam = { approve_below = 0.999, reject_at = 1.0 }
abuse = { approve_below = 0.999, reject_at = 1.0 }
[defaults.languages]
supported = ["en"]
on_unsupported = "review"
[sites."tech-blog".languages]
on_unsupported = "approve"
"""
LATER = datetime(2100, 1, 1, tzinfo=UTC)
FRENCH = "Je ne suis pas du tout d'accord avec cet article, le maire doit démissionner."


def event(cid: str, text: str, site: str = "herald", **extra: str) -> tuple[bytes, bytes]:
    doc = {"id": cid, "site_id": site, "text": text, "author": {"id": f"u-{cid}"}, **extra}
    return f"{site}:{cid}".encode(), json.dumps(doc).encode()


async def test_a_french_comment_is_queued_for_review_with_its_language_on_the_decision(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    comments: list[tuple[bytes | None, bytes]] = [
        event("fr", FRENCH),
        event("en", "Thanks for this article, very informative."),
        event("short", "lol"),
        event("given", "Merci beaucoup pour cet article.", lang="en-GB"),  # the site says en
        event("de", "Das ist ein sehr guter Artikel, vielen Dank.", lang="de"),
        event("fr-tech", FRENCH, site="tech-blog"),
    ]
    kcat_produce(topics.comments, comments, tmp_path)
    service = ServiceProcess(
        topics.env()
        | {"MODERATION_MODEL_PATH": str(tiny_model), "MODERATION_POLICY_FILE": str(policy)},
        tmp_path / "service.log",
    )
    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        await wait_until(
            lambda: all_consumed(topics.group_id, topics.comments), 120, "every comment decided"
        )
        service.signal(signal.SIGTERM)
        assert await service.wait(30) == 0
        queued = await store.list_queue(None, reason="unsupported_language", now=LATER)
    finally:
        service.ensure_dead()
        await store.close()

    docs = [json.loads(r["payload"]) for r in kcat_consume(topics.decisions)]
    by_id: dict[str, dict[str, Any]] = {d["comment_id"]: d for d in docs}
    assert len(by_id) == len(docs) == len(comments)
    for doc in docs:
        validate("decision.v1", doc)

    french = by_id["fr"]
    assert french["action"] == "review"
    assert french["final"] is False
    assert [r["code"] for r in french["reasons"]] == ["unsupported_language"]
    assert french["reasons"][0]["detail"].startswith("language fr (detected, confidence ")
    assert french["language"] == {"code": "fr", "detected": True}
    languages = {i.comment_id: i.language for i in queued.items}
    assert set(languages) == {"fr", "de"}  # queued; tech-blog's approved one is not
    assert languages["fr"] is not None
    assert (languages["fr"].code, languages["fr"].detected) == ("fr", True)

    outcome = {
        k: (d["action"], d["language"]["code"], d["language"]["detected"]) for k, d in by_id.items()
    }
    assert outcome == {
        "fr": ("review", "fr", True),
        "en": ("approve", "en", True),
        "short": ("approve", "und", True),  # cannot be told: scored as ever
        "given": ("approve", "en", False),  # the event's lang wins over detection
        "de": ("review", "de", False),
        "fr-tech": ("approve", "fr", True),  # that site approves what it cannot read
    }
    assert by_id["fr-tech"]["reasons"][0]["code"] == "unsupported_language"
