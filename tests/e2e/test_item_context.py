"""An item's context in Chromium over the whole stack: a reply produced to Kafka with its
article (comment event 1.1) shows the comment it answers, with that comment's author and the
moderator's decision, the article as a safe link under a hostile title shown as text, and
its author's counts; a javascript: article URL never reaches the page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Dialog, expect

from tests.e2e.stack import SITE, served, sign_in
from tests.e2e.test_accessibility import axe_violations, described
from tests.kafka_helpers import KafkaTopics, headers_of, kcat_consume, kcat_produce, wait_until
from tests.node_packages import install_node_packages

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

URL = "https://herald.example/2026/11/council-budget?utm_source=x&p=2#comments"
HOSTILE_TITLE = '<img src=x onerror="document.title=\'pwned\'"> Budget & "cuts" \u202e'
PARENT_TEXT = "<script>document.title='pwned'</script> The budget is a disgrace."
PARENT_AUTHOR = '<b onmouseover="alert(1)">Bob</b>'
REPLY_TEXT = "I read the whole budget and disagree with you."


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = install_node_packages(tmp_path_factory.mktemp("node-axe"))
    return folder / "node_modules" / "axe-core" / "axe.min.js"


def _event(comment_id: str, text: str, author: dict[str, str], **extra: Any) -> tuple[bytes, bytes]:
    doc = {"id": comment_id, "site_id": SITE, "text": text, "author": author, **extra}
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


async def _call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_a_replys_detail_shows_its_parent_its_article_and_its_authors_counts(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token = stack.url, stack.token
        ann = {"id": "u-ann", "name": "Ann"}
        article = {"thread_id": "budget-2026", "thread_url": URL, "thread_title": HOSTILE_TITLE}
        kcat_produce(
            topics.comments,
            [
                _event("c-top", PARENT_TEXT, {"id": "u-bob", "name": PARENT_AUTHOR}, **article),
                _event("c-reply", REPLY_TEXT, ann, parent_id="c-top", **article),
                _event("c-ann-ok", "Thanks for the figures.", ann),
                _event("c-ann-bad", "Buy cheap pills here", ann),
                _event("c-trap", "see the article", ann, thread_url="javascript:alert(1)"),
            ],
            tmp_path,
            partition=0,
        )
        items = f"{url}/api/v1/items/{SITE}"

        async def queued() -> bool:
            return (await _call("GET", f"{items}/c-ann-bad", token))[0] == 200

        await wait_until(queued, 60, "the comments in the review queue")
        for comment_id, verdict in [
            ("c-top", {"action": "reject", "reason": "abuse"}),
            ("c-ann-ok", {"action": "approve", "reason": "ok"}),
            ("c-ann-bad", {"action": "reject", "reason": "spam"}),
        ]:
            status, body = await _call("POST", f"{items}/{comment_id}/decision", token, verdict)
            assert status == 200, (comment_id, body)
        # A reader reports the rejected comment (it stays rejected, and counts as reported).
        report = {"comment_id": "c-ann-bad", "site_id": SITE, "reporter_id": "r-1", "reason": "x"}
        kcat_produce(topics.reports, [(b"herald:c-ann-bad", json.dumps(report).encode())], tmp_path)

        async def reported() -> bool:
            _, body = await _call("GET", f"{items}/c-reply", token)
            return bool(body["author_counts"]["reported"] == 1)

        await wait_until(reported, 60, "the report in the author's counts")
        # The javascript: article URL was refused: dead-lettered, never an item.
        dead = [r for r in kcat_consume(topics.dlq) if r["key"] == f"{SITE}:c-trap"]
        assert [headers_of(r)["moderation.error.reason"] for r in dead] == ["invalid_value"]
        assert (await _call("GET", f"{items}/c-trap", token))[0] == 404

        # axe-core is injected as an inline script, so the CSP is off here: the hostile
        # texts stay text by the page's own doing.
        context = await browser.new_context(bypass_csp=True)
        page = await context.new_page()
        dialogs: list[str] = []

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await sign_in(page, url, token)
        row = page.locator("#queue .row", has_text=REPLY_TEXT)
        await expect(row).to_be_visible(timeout=60_000)
        await expect(page.locator("#queue .row")).to_have_count(1)
        await row.click()
        await expect(page.locator("#d-text")).to_have_text(REPLY_TEXT)

        # The comment it answers: its text, its author, the moderator's decision.
        parent = page.locator("#d-parent")
        await expect(parent).to_be_visible()
        await expect(parent.locator("#d-parent-text")).to_have_text(PARENT_TEXT)
        await expect(parent.locator(".parent-author")).to_have_text(PARENT_AUTHOR)
        await expect(parent.locator(".badge")).to_have_text("reject")
        await expect(parent.locator(".parent-decision")).to_contain_text(
            "rejected as abuse by moderator:alice"
        )

        # The article: a link to exactly the URL, opened in a new tab without an opener or a
        # referrer; its hostile title is text.
        link = page.locator("#d-article a")
        await expect(link).to_have_count(1)
        assert await link.get_attribute("href") == URL
        assert await link.get_attribute("target") == "_blank"
        assert await link.get_attribute("rel") == "noopener noreferrer"
        assert await link.get_attribute("referrerpolicy") == "no-referrer"
        await expect(link.locator(".article-title")).to_have_text(HOSTILE_TITLE)

        # The author's decisions on the site, counted, and the other two listed.
        await expect(page.locator("#d-counts")).to_have_text(
            "3 on this site: 1 approved · 1 rejected · 1 reported · 1 waiting"
        )
        history = page.locator("#d-history .past")
        await expect(history).to_have_count(2)
        await expect(history.locator(".badge.approve")).to_have_count(1)
        await expect(history.locator(".badge.reject")).to_have_count(1)

        # Nothing hostile ran or became markup.
        assert await page.locator("main img, main script, main b").count() == 0
        assert await page.title() == "Moderation queue"
        assert dialogs == []
        violations = await axe_violations(page, axe_script)
        assert violations == [], "an item's detail with its context:\n" + described(violations)
        await context.close()
