"""The whole stack in a browser: a comment produced to Kafka reaches the moderator page, a
keypress rejects it, and the final decision comes out on the decisions topic. Hostile text
shows as text and runs nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, expect

from tests.e2e.stack import SITE, served
from tests.kafka_helpers import KafkaTopics, kcat_consume, kcat_produce, wait_until
from tests.schemas import validate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

HOSTILE_TEXT = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_AUTHOR = "<script>alert(1)</script>"
PLAIN_TEXT = "Is this a fair comment about the council budget?"


def _event(comment_id: str, text: str, author: dict[str, str]) -> tuple[bytes, bytes]:
    doc = {"id": comment_id, "site_id": SITE, "text": text, "author": author}
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


def _moderator_decision(topic: str, comment_id: str) -> dict[str, Any] | None:
    for record in kcat_consume(topic):
        event = json.loads(record["payload"])
        if event["comment_id"] == comment_id and event["decided_by"] != "auto":
            return {"key": record["key"], "event": event}
    return None


async def test_a_moderator_rejects_a_comment_with_a_keypress_and_hostile_text_stays_text(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token, service = stack.url, stack.token, stack.service
        kcat_produce(
            topics.comments,
            [
                _event("c-plain", PLAIN_TEXT, {"id": "u-1", "name": "Reader One"}),
                _event("c-hostile", HOSTILE_TEXT, {"id": "u-2", "name": HOSTILE_AUTHOR}),
            ],
            tmp_path,
        )

        page = await browser.new_page()
        dialogs: list[str] = []

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await page.goto(url + "/")
        title = await page.title()
        await page.fill("#token", token)
        await page.press("#token", "Enter")

        queue = page.locator("#queue")
        plain_row = queue.locator(".row", has_text=PLAIN_TEXT)
        hostile_row = queue.locator(".row", has_text=HOSTILE_TEXT)
        await expect(plain_row).to_be_visible(timeout=60_000)
        await expect(hostile_row).to_be_visible(timeout=60_000)

        # Hostile text and author name are shown literally, and nothing ran.
        await expect(hostile_row.locator(".row-author")).to_have_text(HOSTILE_AUTHOR)
        await hostile_row.click()
        await expect(page.locator("#d-text")).to_have_text(HOSTILE_TEXT)
        await expect(page.locator("#d-author")).to_have_text(HOSTILE_AUTHOR)
        assert await page.locator("main img, main script").count() == 0
        assert await page.title() == title == "Moderation queue"
        assert dialogs == []

        # Claim with `c`, select the plain comment, reject it with `r`.
        await page.keyboard.press("c")
        await expect(page.locator("#message")).to_contain_text("Claimed 2 comments")
        await plain_row.click()
        await expect(page.locator("#d-text")).to_have_text(PLAIN_TEXT)
        await page.keyboard.press("r")
        await expect(page.locator("#message")).to_have_text("Rejected c-plain.")
        await expect(plain_row).to_have_count(0)
        await expect(hostile_row).to_be_visible()

        found: dict[str, Any] | None = None

        async def published() -> bool:
            nonlocal found
            found = _moderator_decision(topics.decisions, "c-plain")
            return found is not None

        await wait_until(published, 60, "the moderator's decision on the decisions topic")
        assert found is not None
        event = found["event"]
        validate("decision.v1", event)
        assert found["key"] == f"{SITE}:c-plain"
        assert (event["action"], event["final"], event["decided_by"]) == (
            "reject",
            True,
            "moderator:alice",
        )
        assert _moderator_decision(topics.decisions, "c-hostile") is None
        assert await page.title() == "Moderation queue"
        assert dialogs == []

        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0
    assert token not in service.log_path.read_text()
