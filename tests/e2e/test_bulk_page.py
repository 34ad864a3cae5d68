"""The whole stack in a browser: a moderator ticks comments (`x`, then a shift-click), approves
them in one bulk action and undoes it inside the window: nothing of it reaches the decisions
topic and the comments come back. "Select all shown" and `a` again, left to run out, is
published: kcat reads one moderator decision per comment. axe-core stays clean with the
selection and the undo bar on the page."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from service.adapters.sql.store import SqlReviewStore
from tests.e2e.stack import SITE, served, sign_in
from tests.e2e.test_accessibility import axe_script, axe_violations, described
from tests.kafka_helpers import KafkaTopics, kcat_consume, kcat_produce, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
__all__ = ["axe_script"]  # the fixture, shared with the accessibility test

UNDO_SECONDS = 8
IDS = [f"c-{n}" for n in range(1, 5)]


def _event(comment_id: str) -> tuple[bytes, bytes]:
    doc = {"id": comment_id, "site_id": SITE, "text": f"<i>Bulk</i> me, please ({comment_id})"}
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


def _by_moderators(topic: str) -> list[dict[str, Any]]:
    events = (json.loads(record["payload"]) for record in kcat_consume(topic))
    return [e for e in events if e["decided_by"] != "auto"]


async def _queue_order(page: Page) -> list[str]:
    rows = page.locator("#queue .row")
    return [str(await rows.nth(n).get_attribute("data-id")) for n in range(await rows.count())]


async def _pending_bulk(url: str, token: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/v1/bulk-actions?site={SITE}", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
    return list(body["bulk_actions"])


async def test_bulk_approve_is_held_for_undo_and_published_after_the_window(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    async with served(
        topics, tiny_model, tmp_path, {"MODERATION_UNDO_SECONDS": str(UNDO_SECONDS)}
    ) as stack:
        kcat_produce(topics.comments, [_event(c) for c in IDS], tmp_path)
        page = await (await browser.new_context(bypass_csp=True)).new_page()  # axe is inline
        await sign_in(page, stack.url, stack.token)
        rows = page.locator("#queue .row")
        await expect(rows).to_have_count(len(IDS), timeout=60_000)
        order = await _queue_order(page)
        assert sorted(order) == IDS

        # x ticks the selected row; a shift-click on the third ticks the rows up to it.
        await rows.nth(0).click()
        await page.keyboard.press("x")
        await expect(rows.nth(0)).to_have_attribute("aria-checked", "true")
        await rows.nth(2).click(modifiers=["Shift"])
        ticked = order[:3]
        for n, comment_id in enumerate(order):
            expected = "true" if comment_id in ticked else "false"
            await expect(rows.nth(n)).to_have_attribute("aria-checked", expected)
        await expect(page.locator("#bulk-count")).to_have_text("3 selected")
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the queue with a bulk selection:\n" + described(violations)

        # a: one bulk action, held for the window; its comments leave the queue.
        await page.keyboard.press("a")
        await expect(page.locator("#message")).to_contain_text("Approved 3 comments: published in")
        await expect(rows).to_have_count(1)
        undo = page.locator("#undo-bar button", has_text="Undo")
        await expect(undo).to_be_visible()
        assert _by_moderators(topics.decisions) == []  # read committed, to the end
        held = await _pending_bulk(stack.url, stack.token)  # so the read was inside the window
        assert [sorted(i["comment_id"] for i in a["items"]) for a in held] == [sorted(ticked)]
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the queue with the undo bar:\n" + described(violations)

        # u: undone; the comments are back, and nothing will be published for them.
        await page.keyboard.press("u")
        await expect(page.locator("#message")).to_contain_text("Undone")
        await expect(rows).to_have_count(len(IDS))
        await expect(page.locator("#undo-bar")).to_be_hidden()
        assert await _pending_bulk(stack.url, stack.token) == []

        # s ticks every row shown; a, and the window is left to run out.
        await page.keyboard.press("s")
        await expect(page.locator("#bulk-count")).to_have_text(f"{len(IDS)} selected")
        await page.keyboard.press("a")
        await expect(rows).to_have_count(0)
        await expect(page.locator("#message")).to_contain_text(
            f"Approved {len(IDS)} comments: published.", timeout=(UNDO_SECONDS + 30) * 1000
        )
        await expect(page.locator("#undo-bar")).to_be_hidden()

        async def all_published() -> bool:
            return len(_by_moderators(topics.decisions)) >= len(IDS)

        await wait_until(all_published, 30, "the bulk decisions on the decisions topic")
        published = _by_moderators(topics.decisions)
        assert sorted(e["comment_id"] for e in published) == IDS  # once each: the undone none
        assert {(e["action"], e["decided_by"]) for e in published} == {
            ("approve", "moderator:alice")
        }
        assert await page.locator("main i").count() == 0  # the comment markup stayed text

        stack.service.signal(signal.SIGTERM)
        assert await stack.service.wait(60) == 0

    store = SqlReviewStore.from_url(stack.service.env["MODERATION_DATABASE_URL"])
    try:
        audit = (await store.audit_log(frozenset({SITE}))).items
    finally:
        await store.close()
    actions = sorted(e.action for e in audit if e.action.startswith("bulk_"))
    assert actions == ["bulk_apply", "bulk_create", "bulk_create", "bulk_undo"]
