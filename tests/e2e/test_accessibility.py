"""The moderator page against WCAG 2.2 AA as axe-core checks it, in Chromium over the whole
stack: the sign-in page, the signed-in queue with a full page of comments, and an item's
detail view report no violation; the keys dialog opens and closes by keyboard; and the
keyboard focus is visible."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, Request, expect

from tests.e2e.stack import SITE, served, sign_in
from tests.kafka_helpers import KafkaTopics, kcat_produce, wait_until
from tests.node_packages import install_node_packages

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PAGE_SIZE = 100  # the page asks for at most this many queued comments
# Texts the tiny model scores low, in between (0.5 to 0.8) and high, so that every level of
# score badge is drawn and checked for contrast.
TEXTS = [
    "I disagree with the council's budget, and here is why.",
    "Check out my channel and subscribe for free prizes www.win.example",
    "You are a stupid worthless idiot and everyone hates you",
    "Visit my blog for more",
    "this author is a fool",
    "Is this a fair comment about the council budget?",
]
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core's browser build, installed from tests/node's lockfile."""
    folder = install_node_packages(tmp_path_factory.mktemp("node-axe"))
    return folder / "node_modules" / "axe-core" / "axe.min.js"


async def axe_violations(page: Page, script: Path) -> list[dict[str, Any]]:
    """Every violation axe finds on the page as it is now."""
    if not await page.evaluate("() => 'axe' in window"):
        await page.add_script_tag(path=script)
    result: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const found = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return found.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                targets: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        AXE_TAGS,
    )
    return result


def described(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}), {len(v['targets'])} elements: {', '.join(v['targets'][:5])}"
        for v in violations
    )


def _event(comment_id: str, text: str, author: int) -> tuple[bytes, bytes]:
    doc = {
        "id": comment_id,
        "site_id": SITE,
        "text": text,
        "author": {"id": f"u-{author}", "name": f"Reader {author}"},
    }
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


async def _status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as response,
        ):
            return response.status
    except aiohttp.ClientError:
        return 0


async def _post(url: str, token: str, body: dict[str, Any]) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status


async def test_axe_finds_no_violation_on_sign_in_the_full_queue_and_an_item(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token = stack.url, stack.token
        # More than a page, from five authors; three of Reader 1's are decided below.
        count = PAGE_SIZE + 5
        kcat_produce(
            topics.comments,
            [_event(f"c-{n:03d}", TEXTS[n % len(TEXTS)], n % 5) for n in range(count)],
            tmp_path,
        )

        async def all_queued() -> bool:
            return await _status(f"{url}/api/v1/items/{SITE}/c-{count - 1:03d}", token) == 200

        await wait_until(all_queued, 60, "every comment in the review queue")
        decisions = [
            ("c-001", {"action": "approve", "reason": "ok"}),
            ("c-006", {"action": "reject", "reason": "spam"}),
            ("c-011", {"action": "reject"}),
        ]
        for comment_id, body in decisions:
            status = await _post(f"{url}/api/v1/items/{SITE}/{comment_id}/decision", token, body)
            assert status == 200, (comment_id, status)

        # The page is the CSP's `script-src 'self'`; axe is injected as an inline script.
        context = await browser.new_context(bypass_csp=True)
        page = await context.new_page()
        await page.goto(url + "/")
        await expect(page.locator("#token")).to_be_visible()
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the sign-in page:\n" + described(violations)

        await page.fill("#token", token)
        await page.press("#token", "Enter")
        rows = page.locator("#queue .row")
        await expect(rows).to_have_count(PAGE_SIZE, timeout=60_000)
        await page.keyboard.press("c")  # claimed badges on ten rows
        await expect(page.locator("#message")).to_contain_text("Claimed 10 comments")
        await expect(page.locator("#queue .badge.mine")).to_have_count(10)
        for level in ("low", "mid", "high"):
            assert await page.locator(f"#queue .pill.{level}").count() > 0, level
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the signed-in queue:\n" + described(violations)

        # Reader 1's comment, with the author's approved, rejected and waiting comments.
        await rows.filter(has_text="Reader 1").nth(3).click()
        await expect(page.locator("#d-author")).to_have_text("Reader 1")
        history = page.locator("#d-history .past")
        await expect(history.locator(".badge.approve")).to_have_count(1)
        await expect(history.locator(".badge.reject")).to_have_count(2)
        violations = await axe_violations(page, axe_script)
        assert violations == [], "an item's detail view:\n" + described(violations)
        await context.close()


async def test_the_keys_dialog_opens_and_closes_by_keyboard_and_the_focus_shows(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token = stack.url, stack.token
        kcat_produce(
            topics.comments,
            [_event(f"c-{n}", TEXTS[n], n) for n in range(3)],
            tmp_path,
        )
        context = await browser.new_context(bypass_csp=True)
        page = await context.new_page()
        posts: list[str] = []

        def on_request(request: Request) -> None:
            if request.method == "POST":
                posts.append(request.url)

        page.on("request", on_request)
        await sign_in(page, url, token)
        rows = page.locator("#queue .row")
        await expect(rows).to_have_count(3, timeout=60_000)

        # Signed in, the focus is on the first comment; `j` moves it, and it shows.
        focused = page.locator("#queue .row:focus")
        await expect(focused).to_have_attribute("data-index", "0")
        await page.keyboard.press("j")
        await expect(focused).to_have_attribute("data-index", "1")
        await expect(focused).to_have_attribute("aria-selected", "true")
        outline = await focused.evaluate(
            """(row) => {
                const style = getComputedStyle(row);
                return [row.matches(":focus-visible"), style.outlineStyle, style.outlineWidth];
            }"""
        )
        assert outline[0] is True, outline
        assert outline[1] != "none", outline
        assert float(outline[2].removesuffix("px")) >= 2, outline
        await page.keyboard.press("ArrowDown")
        await expect(focused).to_have_attribute("data-index", "2")
        await page.keyboard.press("Home")
        await expect(focused).to_have_attribute("data-index", "0")
        texts = await page.locator("#queue .row-text").all_inner_texts()
        await expect(page.locator("#d-text")).to_have_text(texts[0])

        # `?` opens the dialog, modal: focus inside it, and no key acts on the page behind.
        dialog = page.get_by_role("dialog", name="Keyboard keys")
        await page.keyboard.press("?")
        await expect(dialog).to_be_visible()
        await expect(page.locator("#keys-dialog :focus")).to_have_count(1)
        listed = await dialog.locator("dt kbd").all_inner_texts()
        shown = await page.locator(".decide kbd, #claim kbd").all_inner_texts()
        assert set(shown) | {"j", "k", "?"} <= set(listed), (shown, listed)
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the keys dialog:\n" + described(violations)
        await page.keyboard.press("a")
        await page.keyboard.press("j")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(focused).to_have_attribute("data-index", "0")
        await expect(focused).to_have_attribute("aria-selected", "true")

        # `?` toggles it; the footer's button opens it too, by Enter.
        await page.keyboard.press("?")
        await expect(dialog).to_be_visible()
        await page.keyboard.press("?")
        await expect(dialog).to_be_hidden()
        await expect(focused).to_have_attribute("data-index", "0")
        await page.locator("#keys-open").focus()
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_visible()
        await page.keyboard.press("Enter")  # on the dialog's Close button, which has the focus
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#keys-open")).to_be_focused()

        # The `a` and `j` pressed behind the dialog did nothing: a later move is the first.
        await page.keyboard.press("j")
        await expect(page.locator("#d-text")).to_have_text(texts[1])
        assert posts == []
        await expect(rows).to_have_count(3)
        await context.close()
