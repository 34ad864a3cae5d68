"""Fixtures of the end-to-end tests: headless Chromium (the Debian `chromium` package)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> Path:
    """Debian's Chromium. Missing: fail, never skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
