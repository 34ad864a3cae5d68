"""What a decision's reason teaches: through the API, the label store records the moderator's
reason as theirs, and a rejection that names none as `other`, guessed (the in-memory store
here; the SQL store passes the same in tests/integration/service/test_label_sources.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.domain.feedback import ReasonSource, TrainingLabel
from service.domain.model import Action
from tests.fakes_store import InMemoryReviewStore, review_item
from tests.http_helpers import ALICE, app_over, bearer

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def store() -> InMemoryReviewStore:
    s = InMemoryReviewStore()
    # the model believes abuse: a moderator's "spam" must not become "abuse"
    s.add(review_item("herald", "c-1", spam=0.2, abuse=0.7))
    return s


@pytest.fixture
async def client(store: InMemoryReviewStore) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app_over(store))) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "label", "source"),
    [
        ({"action": "reject", "reason": "spam"}, TrainingLabel.SPAM, ReasonSource.MODERATOR),
        ({"action": "reject", "reason": "abuse"}, TrainingLabel.ABUSE, ReasonSource.MODERATOR),
        ({"action": "reject", "reason": "off_topic"}, TrainingLabel.OTHER, ReasonSource.MODERATOR),
        ({"action": "reject"}, TrainingLabel.OTHER, ReasonSource.GUESSED),
        ({"action": "reject", "reason": None}, TrainingLabel.OTHER, ReasonSource.GUESSED),
        ({"action": "approve"}, TrainingLabel.OK, ReasonSource.MODERATOR),
        ({"action": "approve", "reason": "ok"}, TrainingLabel.OK, ReasonSource.MODERATOR),
    ],
)
async def test_the_label_records_the_moderators_reason_or_that_none_was_given(
    client: Client,
    store: InMemoryReviewStore,
    body: dict[str, Any],
    label: TrainingLabel,
    source: ReasonSource,
) -> None:
    response = await client.post(
        "/api/v1/items/herald/c-1/decision", headers=bearer(ALICE), json=body
    )
    assert response.status == 200, await response.text()

    [example] = await store.labels()
    assert (example.label, example.reason_source) == (label, source)
    assert example.labelled_by == "moderator:alice"
    assert example.final_action is Action(body["action"])


async def test_a_bulk_decision_without_a_reason_is_guessed_too(
    client: Client, store: InMemoryReviewStore
) -> None:
    store.add(review_item("herald", "c-2"))
    response = await client.post(
        "/api/v1/decisions",
        headers=bearer(ALICE),
        json={
            "decisions": [
                {"site_id": "herald", "comment_id": "c-1", "action": "reject", "reason": "spam"},
                {"site_id": "herald", "comment_id": "c-2", "action": "reject"},
            ]
        },
    )
    assert response.status == 200, await response.text()

    sources = {e.comment_id: (e.label, e.reason_source) for e in await store.labels()}
    assert sources == {
        "c-1": (TrainingLabel.SPAM, ReasonSource.MODERATOR),
        "c-2": (TrainingLabel.OTHER, ReasonSource.GUESSED),
    }
