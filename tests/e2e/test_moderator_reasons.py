"""The whole stack in a browser: a moderator rejects comments with the reason they mean, by
the key shown on its button, against the model's own belief, and the label store keeps the
moderator's reason (and a rejection without one as guessed, not learned from)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from service.adapters.sql.store import SqlReviewStore
from service.domain.feedback import ReasonSource, TrainingLabel
from tests.e2e.stack import SITE, served, sign_in
from tests.kafka_helpers import KafkaTopics, kcat_consume, kcat_produce, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# insulting, so the model believes abuse; the moderator says it is spam (say, a bot's insult)
INSULT = "You are a stupid worthless idiot and everyone hates you"
# an advert, so the model believes spam; the moderator says it is abuse (say, it harasses)
ADVERT = "Check out my channel and subscribe for free prizes www.win.example"
PLAIN = "I disagree with the council's budget, and here is why."
PAGE_KEYS = {"j", "k", "c", "a", "r"}


def _event(comment_id: str, text: str) -> tuple[bytes, bytes]:
    doc = {"id": comment_id, "site_id": SITE, "text": text, "author": {"id": f"u-{comment_id}"}}
    return f"{SITE}:{comment_id}".encode(), json.dumps(doc).encode()


async def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as response,
        ):
            return response.status, await response.json()
    except aiohttp.ClientError:
        return 0, {}


def _decision_reasons(topic: str) -> dict[str, str]:
    """comment id -> the reason code of its moderator decision on the decisions topic."""
    found = {}
    for record in kcat_consume(topic):
        event = json.loads(record["payload"])
        if event["decided_by"] != "auto":
            found[event["comment_id"]] = event["reasons"][0]["code"]
    return found


async def test_a_moderator_rejects_against_the_models_belief_and_the_labels_say_so(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser
) -> None:
    async with served(topics, tiny_model, tmp_path) as stack:
        url, token, service = stack.url, stack.token, stack.service
        kcat_produce(
            topics.comments,
            [_event("c-insult", INSULT), _event("c-advert", ADVERT), _event("c-plain", PLAIN)],
            tmp_path,
        )

        page = await browser.new_page()
        await sign_in(page, url, token)
        queue = page.locator("#queue")
        rows = {
            cid: queue.locator(".row", has_text=text)
            for cid, text in [
                ("c-insult", INSULT),
                ("c-advert", ADVERT),
                ("c-plain", PLAIN),
            ]
        }
        for row in rows.values():
            await expect(row).to_be_visible(timeout=60_000)

        # The model's belief, as the service scored them: each favours the other label.
        scores = {}
        for cid in rows:
            status, body = await _get(f"{url}/api/v1/items/{SITE}/{cid}", token)
            assert status == 200, body
            item = body["item"]
            assert isinstance(item, dict)
            scores[cid] = item["scores"]
        assert scores["c-insult"]["abuse"] > scores["c-insult"]["spam"], scores
        assert scores["c-advert"]["spam"] > scores["c-advert"]["abuse"], scores

        # Every reason has its own key, shown on its button, clashing with no other key.
        buttons = page.locator("#reject-as button[data-reason]")
        reasons = await buttons.evaluate_all("bs => bs.map((b) => b.dataset.reason)")
        assert reasons == ["spam", "abuse", "off_topic", "personal_info", "other"]
        shown = [await buttons.nth(i).locator("kbd").inner_text() for i in range(len(reasons))]
        assert len(set(shown)) == len(shown)
        assert not set(shown) & PAGE_KEYS
        key = dict(zip(reasons, shown, strict=True))
        footer = await page.locator("footer.keys").inner_text()
        assert all(k in footer for k in shown)

        await page.keyboard.press("c")
        await expect(page.locator("#message")).to_contain_text("Claimed 3 comments")

        await rows["c-insult"].click()
        await expect(page.locator("#d-text")).to_have_text(INSULT)
        await page.keyboard.press(key["spam"])
        await expect(page.locator("#message")).to_have_text("Rejected c-insult as spam.")
        await expect(rows["c-insult"]).to_have_count(0)

        await rows["c-advert"].click()
        await expect(page.locator("#d-text")).to_have_text(ADVERT)
        await page.keyboard.press(key["abuse"])
        await expect(page.locator("#message")).to_have_text("Rejected c-advert as abuse.")
        await expect(rows["c-advert"]).to_have_count(0)

        await rows["c-plain"].click()
        await expect(page.locator("#d-text")).to_have_text(PLAIN)
        await page.keyboard.press("r")  # rejected, no reason given
        await expect(page.locator("#message")).to_have_text("Rejected c-plain.")
        await expect(rows["c-plain"]).to_have_count(0)

        published: dict[str, str] = {}

        async def all_published() -> bool:
            nonlocal published
            published = _decision_reasons(topics.decisions)
            return len(published) == 3

        await wait_until(all_published, 60, "the moderator's decisions on the decisions topic")
        assert published == {"c-insult": "spam", "c-advert": "abuse", "c-plain": "other"}

        service.signal(signal.SIGTERM)
        assert await service.wait(60) == 0

    store = SqlReviewStore.from_url(service.env["MODERATION_DATABASE_URL"])
    try:
        labels = {e.comment_id: e for e in await store.labels()}
    finally:
        await store.close()
    assert {cid: (e.label, e.reason_source) for cid, e in labels.items()} == {
        "c-insult": (TrainingLabel.SPAM, ReasonSource.MODERATOR),
        "c-advert": (TrainingLabel.ABUSE, ReasonSource.MODERATOR),
        "c-plain": (TrainingLabel.OTHER, ReasonSource.GUESSED),
    }
    assert {e.labelled_by for e in labels.values()} == {"moderator:alice"}
