"""The moderator page in Chromium, fed a corpus of script-injection payloads as comment text and
as author names through the real SQLite store and the served app: every payload shows as its
literal text, and none runs (no dialog, no `window.__pwned`, no title change, no markup, no
Content-Security-Policy violation, which would mean markup got in and only the CSP stopped it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Dialog, expect

from service.adapters.sql.store import SqlReviewStore
from service.adapters.token_file import TokenRegistry, add_token
from service.entrypoints.http.app import app_runner, build_app
from service.usecases.review_service import ReviewService
from tests.fakes import FixedClock
from tests.http_helpers import DECISIONS_TOPIC, stored_comment

pytestmark = pytest.mark.slow

SITE = "herald"
PWN = "window.__pwned=1;document.title='pwned'"
# Each one tries, by its own route, to run PWN or alert().
PAYLOADS = [
    f"<script>{PWN}</script>",
    f"<SCRIPT SRC=data:text/javascript,{PWN}></SCRIPT>",
    f'<img src=x onerror="{PWN}">',
    f"<img src=x onerror={PWN}//",
    f"<svg onload={PWN}>",
    f"<svg><script>{PWN}</script></svg>",
    f"<svg><animate onbegin={PWN} attributeName=x dur=1s>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={PWN}>",
    f'<a href="javascript:{PWN}">click me</a>',
    f'<a href="jAvAsCrIpT&colon;{PWN}">entity-encoded scheme</a>',
    f'<iframe src="javascript:{PWN}"></iframe>',
    f'<iframe srcdoc="<script>parent.{PWN}</script>"></iframe>',
    f'<object data="data:text/html,<script>{PWN}</script>"></object>',
    f'<embed src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">{PWN}',
    f'"><script>{PWN}</script>',
    f"'><img src=x onerror={PWN}>",
    f'" autofocus onfocus="{PWN}" x="',
    f"</textarea><script>{PWN}</script>",
    f"</title><script>{PWN}</script>",
    f"</style><script>{PWN}</script>",
    f"<style>body{{background:url('javascript:{PWN}')}}</style>",
    f'<div style="width:expression({PWN})">css expression</div>',
    f"<body onload={PWN}>",
    f"<details open ontoggle={PWN}>",
    f"<input autofocus onfocus={PWN}>",
    f"<video><source onerror={PWN}></video>",
    f"<marquee onstart={PWN}>",
    "${alert(1)}`;alert(2);`",
    "{{constructor.constructor('alert(1)')()}}",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "\\x3cimg src=x onerror=alert(1)\\x3e",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    f"<meta http-equiv=refresh content='0;url=javascript:{PWN}'>",
    f'<form action="javascript:{PWN}"><button>go</button></form>',
    f'<base href="javascript:{PWN}//">',
    f"<template><script>{PWN}</script></template>",
    f"<noscript><p title='</noscript><img src=x onerror={PWN}>'>",
    f"\u202e<script>{PWN}</script>\u202c \U0001f600",
    f"<scr<script>ipt>{PWN}</scr</script>ipt>",
]


# Elements a payload would create if it were parsed as markup.
INJECTED_TAGS = [
    "script",
    "img",
    "svg",
    "math",
    "iframe",
    "object",
    "embed",
    "a",
    "style",
    "form",
    "input",
    "video",
    "marquee",
    "details",
    "meta",
    "base",
    "template",
    "body",
    "noscript",
]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The page and API over a SQLite store holding every payload twice: as the text of one
    comment and as the author name of another. Yields (base URL, moderator token)."""
    store = SqlReviewStore.from_url(f"sqlite:///{tmp_path / 'store.db'}")
    await store.migrate()
    start = FixedClock().moment - timedelta(hours=2)
    await store.record_decisions(
        [
            stored_comment(
                SITE,
                f"text-{n:02d}",
                text=payload,
                author_id=None,
                author_name=f"reader {n}",
                decided_at=start + timedelta(seconds=n),
            )
            for n, payload in enumerate(PAYLOADS)
        ]
        + [
            stored_comment(
                SITE,
                f"name-{n:02d}",
                text=f"plain comment {n}",
                author_id=None,
                author_name=payload,
                decided_at=start + timedelta(minutes=30, seconds=n),
            )
            for n, payload in enumerate(PAYLOADS)
        ]
    )
    tokens = tmp_path / "tokens.json"
    token = add_token(tokens, "alice", "moderator", [SITE])
    review = ReviewService(store, FixedClock(), decisions_topic=DECISIONS_TOPIC)
    runner = app_runner(build_app(review, TokenRegistry.load(tokens)))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        [address] = runner.addresses
        yield f"http://127.0.0.1:{address[1]}", token
    finally:
        await runner.cleanup()
        await store.close()


def test_the_corpus_is_large_and_has_no_duplicates() -> None:
    assert len(PAYLOADS) >= 30
    assert len(set(PAYLOADS)) == len(PAYLOADS)


async def test_no_payload_runs_and_each_shows_as_literal_text(
    browser: Browser, served: tuple[str, str]
) -> None:
    url, token = served
    page = await browser.new_page()
    dialogs: list[str] = []
    violations: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    await page.goto(url + "/")
    await page.fill("#token", token)
    await page.press("#token", "Enter")

    rows = page.locator("#queue .row")
    await expect(rows).to_have_count(2 * len(PAYLOADS), timeout=30_000)
    # The queue, oldest first: the payloads as text, then as author names.
    texts = await page.locator("#queue .row-text").all_text_contents()
    authors = await page.locator("#queue .row-author").all_text_contents()
    assert texts[: len(PAYLOADS)] == PAYLOADS
    assert authors[len(PAYLOADS) :] == PAYLOADS

    # The detail pane too, for every payload, as text and as author.
    for index, payload in enumerate(PAYLOADS):
        await rows.nth(index).click()
        await expect(page.locator("#d-text")).to_have_text(payload, use_inner_text=False)
        await rows.nth(len(PAYLOADS) + index).click()
        await expect(page.locator("#d-author")).to_have_text(payload, use_inner_text=False)
        await expect(page.locator("#d-text")).to_have_text(f"plain comment {index}")

    assert await page.evaluate("() => window.__pwned") is None
    assert await page.title() == "Moderation queue"
    injected = ", ".join(
        f":is(#queue, #d-author, #d-meta, #d-text, #d-history) {tag}" for tag in INJECTED_TAGS
    )
    assert await page.locator(injected).count() == 0
    assert dialogs == []
    assert violations == []
