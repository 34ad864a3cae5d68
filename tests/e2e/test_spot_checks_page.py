"""The whole stack in a browser: with approve_rate = 1 every automatic approval is also a
spot check in the queue, shown with its reason; after a verdict the error-rate panel shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.stack import SITE, served, sign_in
from tests.e2e.test_accessibility import axe_script, axe_violations, described
from tests.kafka_helpers import KafkaTopics, kcat_produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
__all__ = ["axe_script"]  # the fixture, shared with the accessibility test

POLICY = f"""
version = "spot-1"
[defaults.thresholds]
spam = {{ approve_below = 1.0, reject_at = 1.0 }}
abuse = {{ approve_below = 1.0, reject_at = 1.0 }}
[sites.{SITE}.spot_check]
approve_rate = 1.0
"""
TEXT = "<b>Lovely</b> piece on the harbour, thanks"


async def test_spot_checks_appear_with_their_reason_and_a_verdict_shows_the_rate(
    topics: KafkaTopics, tiny_model: Path, tmp_path: Path, browser: Browser, axe_script: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    async with served(
        topics, tiny_model, tmp_path, {"MODERATION_POLICY_FILE": str(policy)}
    ) as stack:
        doc = {"id": "c-spot", "site_id": SITE, "text": TEXT}
        kcat_produce(
            topics.comments, [(f"{SITE}:c-spot".encode(), json.dumps(doc).encode())], tmp_path
        )

        # no CSP, so that axe (an inline script) can check the panel too
        page = await (await browser.new_context(bypass_csp=True)).new_page()
        await sign_in(page, stack.url, stack.token)
        row = page.locator("#queue .row", has_text=TEXT)  # the markup shown as text
        await expect(row).to_be_visible(timeout=60_000)
        await expect(row).to_contain_text("spot check")
        await row.click()
        await expect(page.locator("#d-reasons")).to_contain_text("spot_check")
        await expect(page.locator("#d-reasons")).to_contain_text("automatic approve")
        await expect(page.locator("#spot-checks")).to_be_hidden()

        await page.keyboard.press("c")
        await expect(page.locator("#message")).to_contain_text("Claimed 1 comment")
        await page.keyboard.press("r")  # overturned: rejected
        await expect(row).to_have_count(0)

        panel = page.locator("#spot-checks")
        await expect(panel).to_be_visible(timeout=15_000)
        await expect(panel).to_contain_text("auto-approved, would reject: 100.0%")
        await expect(panel).to_contain_text("1 of 1")
        violations = await axe_violations(page, axe_script)
        assert violations == [], "the page with the spot-check panel:\n" + described(violations)
