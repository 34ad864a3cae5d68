"""The service as the browser tests run it: every comment goes to review, one moderator of
SITE and an admin hold tokens, and the process is up before the test goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from playwright.async_api import Page

from service.adapters.token_file import add_token
from tests.kafka_helpers import KafkaTopics, ServiceProcess, wait_until

SITE = "herald"
# Thresholds that no score can cross: every comment is queued for a human.
REVIEW_EVERYTHING = {
    "MODERATION_SPAM_APPROVE_BELOW": "0",
    "MODERATION_SPAM_REJECT_AT": "1",
    "MODERATION_ABUSE_APPROVE_BELOW": "0",
    "MODERATION_ABUSE_REJECT_AT": "1",
}


@dataclass(frozen=True)
class Served:
    url: str
    token: str  # moderator alice's, for SITE
    service: ServiceProcess


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@asynccontextmanager
async def served(
    topics: KafkaTopics, model: Path, tmp_path: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[Served]:
    """`moderation serve` on `topics` with `model`, every comment to review (`env` adds or
    overrides settings), healthy before it is yielded, dead after."""
    tokens = tmp_path / "tokens.json"
    token = add_token(tokens, "alice", "moderator", [SITE])
    add_token(tokens, "root", "admin", ["*"])  # the service refuses to start without an admin
    service = ServiceProcess(
        topics.env()
        | {
            "MODERATION_MODEL_PATH": str(model),
            "MODERATION_TOKENS_FILE": str(tokens),
            "MODERATION_INSTANCE_ID": f"e2e-{topics.group_id}",
        }
        | REVIEW_EVERYTHING
        | dict(env or {}),
        tmp_path / "service.log",
    )
    url = f"http://127.0.0.1:{service.http_port}"
    try:

        async def up() -> bool:
            assert service.proc.poll() is None, service.log_path.read_text()[-3000:]
            return await _healthy(url)

        await wait_until(up, 60, "the service's /healthz")
        yield Served(url, token, service)
    finally:
        service.ensure_dead()


async def sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(url + "/")
    await page.fill("#token", token)
    await page.press("#token", "Enter")
