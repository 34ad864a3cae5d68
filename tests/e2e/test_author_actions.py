"""The whole stack in a browser: a moderator blocks an author from one of their comments on the
page, and the author's next comment, produced to Kafka with kcat, comes out on the decisions
topic rejected as `blocked_author`; unblocked, the comment after that is decided as before.
Both changes are in the audit log, and the page stays axe-core clean while showing them."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from service.adapters.sql.store import SqlReviewStore
from tests.e2e.stack import SITE, served, sign_in
from tests.e2e.test_accessibility import axe_violations, described
from tests.kafka_helpers import KafkaTopics, kcat_consume, kcat_produce, wait_until
from tests.node_packages import install_node_packages

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

AUTHOR = "u-troll"
AUTHOR_NAME = "<b>Troll</b> <script>alert(1)</script>"  # hostile: shown as text
NOTE_FREE_TEXT = "Is this a fair comment about the council budget?"


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = install_node_packages(tmp_path_factory.mktemp("node-axe"))
    return folder / "node_modules" / "axe-core" / "axe.min.js"


def _event(comment_id: str, author: str = AUTHOR) -> tuple[bytes, bytes]:
    doc = {
        "id": comment_id,
        "site_id": SITE,
        "text": f"{NOTE_FREE_TEXT} ({comment_id})",
        "author": {"id": author, "name": AUTHOR_NAME},
    }
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


def _automatic(topic: str) -> dict[str, dict[str, Any]]:
    """comment id -> its automatic decision event on the decisions topic."""
    events = (json.loads(record["payload"]) for record in kcat_consume(topic))
    return {e["comment_id"]: e for e in events if e["decided_by"] == "auto"}


async def _decision_of(topic: str, comment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def decided() -> bool:
        found.update(_automatic(topic).get(comment_id) or {})
        return bool(found)

    await wait_until(decided, 60, f"the decision of {comment_id} on the decisions topic")
    return found


async def test_a_block_from_the_page_rejects_the_authors_next_comment_until_unblocked(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token, service = stack.url, stack.token, stack.service
        kcat_produce(topics.comments, [_event("c-1")], tmp_path)
        first = await _decision_of(topics.decisions, "c-1")
        assert first["action"] == "review"  # every comment is queued here (REVIEW_EVERYTHING)

        context = await browser.new_context(bypass_csp=True)  # axe is injected inline
        page = await context.new_page()
        await sign_in(page, url, token)
        row = page.locator("#queue .row", has_text="(c-1)")
        await expect(row).to_be_visible(timeout=60_000)
        await row.click()
        status = page.locator("#d-author-status")
        await expect(status).to_have_text("Author neither trusted nor blocked on this site")
        await expect(page.locator("#d-author")).to_have_text(AUTHOR_NAME)

        # Blocked by its key, from the item.
        await page.keyboard.press("b")
        await expect(status).to_contain_text("Author blocked on this site by moderator:alice")
        await expect(page.locator("#message")).to_contain_text("next comments are rejected")
        await expect(row.locator(".badge", has_text="author blocked")).to_be_visible()
        unblock = page.get_by_role("button", name="Unblock author")
        await expect(unblock).to_be_enabled()
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the item of a blocked author:\n" + described(violations)

        # The author's next comment, from Kafka: rejected for the block, a final decision.
        kcat_produce(topics.comments, [_event("c-2")], tmp_path)
        blocked = await _decision_of(topics.decisions, "c-2")
        assert (blocked["action"], blocked["final"]) == ("reject", True)
        assert blocked["reasons"][0]["code"] == "blocked_author"
        assert AUTHOR in blocked["reasons"][0]["detail"]

        # Unblocked by its button (Tab reaches it; Enter presses it), from the same item.
        await unblock.focus()
        await page.keyboard.press("Enter")
        await expect(status).to_have_text("Author neither trusted nor blocked on this site")
        await expect(row.locator(".badge", has_text="author blocked")).to_have_count(0)

        kcat_produce(topics.comments, [_event("c-3")], tmp_path)
        after = await _decision_of(topics.decisions, "c-3")
        assert after["action"] == "review"
        assert "blocked_author" not in [r["code"] for r in after["reasons"]]
        await expect(page.locator("#queue .row", has_text="(c-3)")).to_be_visible(timeout=30_000)
        assert await page.locator("main script, main b").count() == 0
        await context.close()

        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0

    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        audit = (await store.audit_log(frozenset({SITE}))).items
        lifted = await store.author_status(SITE, AUTHOR)
    finally:
        await store.close()
    assert lifted is None
    assert [(e.actor, e.action) for e in reversed(audit)] == [
        ("moderator:alice", "block_author"),
        ("moderator:alice", "unblock_author"),
    ]
    assert all(AUTHOR in e.detail for e in audit)
