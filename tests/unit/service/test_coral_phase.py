"""Coral's external moderation phase, sent what Coral sends: the body as `JSON.stringify(body,
null, 2)` (indented by two spaces, raw UTF-8, no `\\u` escapes), signed like Coral signs it,
HTML by default (the phase form's default format), `NEW` and `EDIT`, real reply ids. Over
the real pipeline and SQLite store; the fake model scores by keywords."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from service.domain.model import Comment, Scores
from service.entrypoints.http.coral import ApproveAnswer, BodyFormat, CoralConfig, StaffPolicy
from tests.fakes import FixedClock, KeywordClassifier
from tests.schemas import validate
from tests.sync_stack import BUDGET, NEW_SECRET, OLD_SECRET, Stack, sync_stack

NOW = FixedClock().moment
REPLY_TO = "d79b787f-f406-49a0-a179-72e3652e54be"  # a Coral comment id, as in its docs


class GatedClassifier(KeywordClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().score(comments)


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    model, config = getattr(request, "param", (None, None))
    async with sync_stack(tmp_path, model, coral=config) as built:
        yield built


def config(**changes: Any) -> CoralConfig:
    return CoralConfig(secrets=(OLD_SECRET, NEW_SECRET), budget_seconds=BUDGET, **changes)


def coral_body(
    body: str,
    *,
    role: str = "COMMENTER",
    author: str = "baf4e943-3594-4fcc-b2ba-3e8de7a76352",
    action: str = "NEW",
    parent: str | None = None,
    story: str = "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6",
    site: str | None = "herald",
    story_url: str = "https://herald.example/posts/a-story-url/",
) -> bytes:
    """What Coral's `processPhase` sends, serialised as Coral does."""
    doc: dict[str, Any] = {
        "action": action,
        "comment": {"body": body, "parentID": parent},
        "author": {"id": author, "role": role},
        "story": {"id": story, "url": story_url},
        "site": {"id": site} if site is not None else {},
        "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
        "tenantDomain": "herald.example",
    }
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()


def sign(body: bytes, *secrets: bytes) -> str:
    return ",".join(
        "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest() for secret in secrets
    )


async def coral(stack: Stack, body: bytes, signature: str | None = "sign") -> Any:
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body, NEW_SECRET)
    if signature is not None:
        headers["X-Coral-Signature"] = signature
    return await stack.client.post("/integrations/coral/moderation", data=body, headers=headers)


async def published(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in await stack.store.outbox_pending(100)]


def stored_events(tmp_path: Path) -> list[dict[str, Any]]:
    """The comment events as the store keeps them (read straight from the SQLite file)."""
    with sqlite3.connect(tmp_path / "store.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT event_json FROM comments")]


async def test_the_body_is_what_coral_sends() -> None:
    body = coral_body("Très bien — 👍", parent=REPLY_TO)

    assert "Très bien — 👍".encode() in body  # raw UTF-8, as JSON.stringify writes it
    assert body.startswith(b'{\n  "action": "NEW",\n  "comment": {\n    "body": ')


async def test_no_objection_is_a_204_so_corals_later_phases_still_run(stack: Stack) -> None:
    response = await coral(stack, coral_body("<p>lovely article</p>"))

    assert response.status == 204
    assert await response.read() == b""
    [decision] = await published(stack)
    validate("decision.v1", decision)
    assert (decision["site_id"], decision["action"]) == ("herald", "approve")


@pytest.mark.parametrize("stack", [(None, config(on_approve=ApproveAnswer.APPROVE))], indirect=True)
async def test_a_site_that_wants_approved_says_so(stack: Stack) -> None:
    response = await coral(stack, coral_body("<p>lovely article</p>"))

    assert response.status == 200
    assert await response.json() == {"status": "APPROVED"}


@pytest.mark.parametrize(
    ("body", "code", "flag"),
    [
        ("<p>you <b>idiot</b></p>", "ABUSIVE", "COMMENT_DETECTED_TOXIC"),
        ("<p>buy pills</p>", "SPAM", "COMMENT_DETECTED_SPAM"),
    ],
)
async def test_a_rejection_tells_coral_why(stack: Stack, body: str, code: str, flag: str) -> None:
    response = await coral(stack, coral_body(body))

    answer = await response.json()
    [decision] = await published(stack)
    assert decision["action"] == "reject"
    assert answer["status"] == "REJECTED"
    assert answer["actions"] == [{"actionType": "FLAG", "reason": flag}]
    reason = answer["moderationAction"]["rejectionReason"]
    assert answer["moderationAction"]["status"] == "REJECTED"
    assert reason["code"] == code
    assert reason["detailedExplanation"] == "; ".join(r["detail"] for r in decision["reasons"])


async def test_a_withheld_comment_waits_in_corals_queue_and_not_also_in_ours(
    stack: Stack,
) -> None:
    response = await coral(stack, coral_body("<p>maybe</p>"))

    assert await response.json() == {
        "status": "SYSTEM_WITHHELD",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
    }
    [decision] = await published(stack)
    assert decision["action"] == "review"
    queue = await stack.store.list_queue(None, now=NOW)
    assert queue.items == ()  # Coral's moderators decide it; ours never see it


async def test_html_is_scored_as_the_text_a_reader_sees(stack: Stack, tmp_path: Path) -> None:
    # the markup holds an abusive word only in an attribute, and a link behind harmless words
    hidden = coral_body('<p class="idiot">lovely &amp; <i>kind</i></p>', author="a-1")
    linked = coral_body('<p>see <a href="https://buy.example/pills">this</a></p>', author="a-2")

    assert (await coral(stack, hidden)).status == 204
    assert (await coral(stack, linked)).status == 200  # rejected: spam
    texts = {e["author"]["id"]: e["text"] for e in stored_events(tmp_path)}
    assert texts["a-1"] == "lovely & kind"
    assert texts["a-2"] == "see this https://buy.example/pills"
    actions = {d["action"] for d in await published(stack)}
    assert actions == {"approve", "reject"}  # the link's target was scored


@pytest.mark.parametrize("stack", [(None, config(body_format=BodyFormat.PLAIN))], indirect=True)
async def test_a_plain_text_phase_is_scored_as_sent(stack: Stack, tmp_path: Path) -> None:
    await coral(stack, coral_body("2 < 3 & <3 Très bien"))

    [event] = stored_events(tmp_path)
    assert event["text"] == "2 < 3 & <3 Très bien"


async def test_the_same_request_twice_is_one_decision(stack: Stack) -> None:
    first = await coral(stack, coral_body("<p>maybe</p>"))
    again = await coral(stack, coral_body("<p>maybe</p>"))

    assert await again.json() == await first.json()
    assert len(await published(stack)) == 1
    assert stack.model.calls == [1]


@pytest.mark.parametrize(
    "other",
    [
        {"author": "2c1a4f2e-5d1b-4f0e-9a55-0b9d3c7e1f10"},  # another reader, the same words
        {"action": "EDIT"},  # an edit is decided anew
        {"parent": REPLY_TO},  # a reply elsewhere in the thread
        {"story": "0f6c7c02-8c39-4d47-9d0c-6a3d2a51c7a1"},  # another story
    ],
    ids=["author", "edit", "reply", "story"],
)
async def test_a_different_comment_with_the_same_words_gets_its_own_decision(
    stack: Stack, other: dict[str, str]
) -> None:
    await coral(stack, coral_body("<p>Great piece!</p>"))
    await coral(stack, coral_body("<p>Great piece!</p>", **other))

    ids = {d["comment_id"] for d in await published(stack)}
    assert len(ids) == 2
    assert all(i.startswith("coral-") for i in ids)


async def test_a_reply_keeps_its_parent_and_story(stack: Stack, tmp_path: Path) -> None:
    await coral(stack, coral_body("<p>Indeed.</p>", parent=REPLY_TO, action="EDIT"))

    [event] = stored_events(tmp_path)
    assert event["parent_id"] == REPLY_TO
    assert event["thread_id"] == "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6"
    assert event["coral"]["action"] == "EDIT"


async def test_the_storys_url_is_stored_as_the_comments_article_link(
    stack: Stack, tmp_path: Path
) -> None:
    await coral(stack, coral_body("<p>Indeed.</p>", parent=REPLY_TO))

    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = list(db.execute("SELECT parent_id, thread_url, thread_title FROM comments"))
    # Coral sends no title
    assert rows == [(REPLY_TO, "https://herald.example/posts/a-story-url/", None)]


async def test_a_story_url_that_is_no_http_link_is_left_out_and_the_comment_decided(
    stack: Stack, tmp_path: Path
) -> None:
    response = await coral(stack, coral_body("<p>Indeed.</p>", story_url="javascript:alert(1)"))

    assert response.status in (200, 204)
    [event] = stored_events(tmp_path)
    assert event["thread_url"] is None
    assert event["coral"]["story_url"] == "javascript:alert(1)"  # kept, never a link
    assert len(await published(stack)) == 1


@pytest.mark.parametrize("role", ["MODERATOR", "STAFF", "ADMIN"])
async def test_staff_who_reach_the_phase_are_scored_by_default(stack: Stack, role: str) -> None:
    response = await coral(stack, coral_body("<p>you idiot</p>", role=role))

    assert (await response.json())["status"] == "REJECTED"
    assert stack.model.calls == [1]


@pytest.mark.parametrize("stack", [(None, config(staff=StaffPolicy.APPROVE))], indirect=True)
async def test_a_site_may_approve_its_staff_without_scoring(stack: Stack) -> None:
    response = await coral(stack, coral_body("<p>you idiot</p>", role="MODERATOR"))

    assert response.status == 204  # approved: no objection
    assert stack.model.calls == []
    [decision] = await published(stack)
    assert [r["code"] for r in decision["reasons"]] == ["staff_author"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{\n  "action": "NEW",\n  "comment": {', "not JSON"),
        (b"[]", "JSON object"),
        (coral_body("<p>hello</p>", site=None), "site.id"),
        (json.dumps({"comment": {"body": 7}, "site": {"id": "herald"}}).encode(), "string"),
    ],
    ids=["truncated", "array", "no-site", "body-not-string"],
)
async def test_a_signed_but_broken_request_is_a_json_400_and_nothing_happens(
    stack: Stack, body: bytes, message: str
) -> None:
    response = await coral(stack, body)

    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert message in error["message"]
    assert stack.model.calls == []
    assert await published(stack) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (coral_body("<p>" + "buy pills " * 2_001 + "</p>"), "text_too_long"),
        (coral_body("<p>hello</p>", site="the herald"), "invalid_value"),
        (coral_body("<p>hello</p>", author="a" * 2_049), "invalid_value"),
    ],
    ids=["text-too-long", "site-with-a-space", "author-id-too-long"],
)
async def test_a_comment_the_contract_refuses_is_a_400_naming_why_and_nothing_happens(
    stack: Stack, tmp_path: Path, body: bytes, reason: str
) -> None:
    # a 204 would read as "no objection" in Coral, with nothing logged on either side
    response = await coral(stack, body)

    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_comment"
    assert error["message"].startswith(f"{reason}: ")
    assert stack.model.calls == []
    assert await published(stack) == []
    assert stored_events(tmp_path) == []


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=abcdef",
        sign(b"another body", NEW_SECRET),
        sign(coral_body("<p>lovely article</p>"), b"whsec-someone-else-012345"),
    ],
    ids=["missing", "empty", "zeros", "other-scheme", "other-body", "unknown-secret"],
)
async def test_a_bad_signature_is_refused_and_nothing_happens(
    stack: Stack, signature: str | None
) -> None:
    response = await coral(stack, coral_body("<p>lovely article</p>"), signature)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"
    assert stack.model.calls == []
    assert await published(stack) == []


@pytest.mark.parametrize(
    "secrets",
    [(OLD_SECRET,), (NEW_SECRET,), (b"whsec-retired-0123456789", NEW_SECRET)],
    ids=["old-only", "new-only", "retired-and-new"],
)
async def test_every_configured_secret_is_accepted_during_rotation(
    stack: Stack, secrets: tuple[bytes, ...]
) -> None:
    body = coral_body("<p>lovely article</p>")
    response = await coral(stack, body, sign(body, *secrets))

    assert response.status == 204
    assert len(await published(stack)) == 1


@pytest.mark.parametrize("stack", [(GatedClassifier(), None)], indirect=True)
async def test_an_overloaded_model_gets_coral_a_204_within_budget_and_loses_nothing(
    stack: Stack,
) -> None:
    assert isinstance(stack.model, GatedClassifier)
    started = time.monotonic()
    response = await coral(stack, coral_body("<p>maybe</p>"))
    elapsed = time.monotonic() - started

    assert response.status == 204
    assert elapsed < BUDGET + 0.02 + 0.05  # budget + 20 ms, and the test client's own cost
    stack.model.gate.set()
    await stack.moderator.drain()
    [decision] = await published(stack)  # decided and published all the same
    assert decision["action"] == "review"


async def test_coral_is_off_without_secrets(tmp_path: Path) -> None:
    async with sync_stack(tmp_path, coral=CoralConfig(secrets=())) as stack:
        body = coral_body("<p>x</p>")
        response = await coral(stack, body, sign(body))

        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
