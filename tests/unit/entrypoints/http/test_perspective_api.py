"""The Perspective-compatible API in process: Google's paths and shapes, keys, sites, rate
limits, `doNotStore`, score suggestions as labels. Over the real pipeline and SQLite store;
the fake model scores by keywords, so expected scores are asked of the model itself."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.domain.feedback import ReasonSource, TrainingLabel
from service.domain.model import Comment, Scores
from service.domain.policy import LanguageMode, LanguageRules, Policy
from service.settings import Settings
from service.usecases.perspective.api import comment_id
from service.usecases.perspective.protocol import Attribute
from service.usecases.perspective.spans import utf16_offsets
from tests.fakes import KeywordClassifier, WordLanguageDetector
from tests.sync_stack import BUDGET, POLICY, Stack, sync_stack

ANALYZE = "/v1alpha1/comments:analyze"
SUGGEST = "/v1alpha1/comments:suggestscore"
ALL: dict[str, dict[str, Any]] = {a.value: {} for a in Attribute}
SUBS = ["SEVERE_TOXICITY", "INSULT", "PROFANITY", "THREAT", "IDENTITY_ATTACK"]


class SubScoreClassifier(KeywordClassifier):
    """A model with abuse sub-scores: each a fixed share of the abuse score."""

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        return [
            replace(
                s,
                severe_toxicity=s.abuse * 0.5,
                insult=s.abuse * 0.9,
                profanity=s.abuse * 0.3,
                threat=s.abuse * 0.1,
                identity_attack=s.abuse * 0.2,
            )
            for s in super().score(comments)
        ]


class GatedClassifier(KeywordClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().score(comments)


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    options: dict[str, Any] = dict(getattr(request, "param", {}))
    for name, value in options.items():
        if isinstance(value, type):  # a fresh model or detector for each test
            options[name] = value()
    async with sync_stack(tmp_path, **options) as built:
        yield built


def body(text: str = "a fine comment", **fields: Any) -> dict[str, Any]:
    return {"comment": {"text": text}, "requestedAttributes": ALL, **fields}


async def post(
    stack: Stack, path: str, doc: Any, key: str | None = "herald", raw: bytes | None = None
) -> tuple[int, Any, Any]:
    params = {} if key is None else {"key": stack.tokens.get(key, key)}
    data = raw if raw is not None else json.dumps(doc).encode()
    response = await stack.client.post(path, params=params, data=data)
    return response.status, await response.json(), response.headers


def model_scores(stack: Stack, text: str) -> Scores:
    calls = list(stack.model.calls)
    [scores] = stack.model.score([Comment(id="x", site_id="herald", text=text)])
    stack.model.calls[:] = calls  # asking the model is not the service's call
    return scores


def values(doc: Any) -> dict[str, float]:
    return {k: v["summaryScore"]["value"] for k, v in doc["attributeScores"].items()}


def stored_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "store.db") as db:
        return [
            *db.execute("SELECT * FROM comments"),
            *db.execute("SELECT * FROM labels"),
            *db.execute("SELECT * FROM outbox"),
        ]


def store_bytes(tmp_path: Path) -> bytes:
    """Every byte of the SQLite store: the database file, its journal and WAL."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("store.db*")))


def assert_google_error(status: int, doc: Any, expected: int, google: str) -> str:
    assert status == expected
    assert set(doc) == {"error"}
    assert set(doc["error"]) == {"code", "message", "status"}
    assert (doc["error"]["code"], doc["error"]["status"]) == (expected, google)
    message: str = doc["error"]["message"]
    return message


# Scores


async def test_every_attribute_is_scored_from_the_model(stack: Stack) -> None:
    text = "you idiot, buy my pills"
    status, doc, headers = await post(stack, ANALYZE, body(text, doNotStore=True))

    expected = model_scores(stack, text)
    assert status == 200
    assert set(doc["attributeScores"]) == set(ALL)
    assert all(v["summaryScore"]["type"] == "PROBABILITY" for v in doc["attributeScores"].values())
    got = values(doc)
    assert got["TOXICITY"] == pytest.approx(expected.abuse)
    assert got["SPAM"] == pytest.approx(expected.spam)
    # the fake model has no sub-scores: each is answered with the abuse score, and said so
    assert all(got[name] == pytest.approx(expected.abuse) for name in SUBS)
    assert headers["Moderation-Substituted-Attributes"].split(",") == SUBS
    assert (doc["languages"], doc["detectedLanguages"]) == ([], [])


@pytest.mark.parametrize("stack", [{"model": SubScoreClassifier}], indirect=True)
async def test_a_model_with_sub_scores_answers_them(stack: Stack) -> None:
    text = "you idiot"
    status, doc, headers = await post(stack, ANALYZE, body(text, doNotStore=True))

    expected = model_scores(stack, text)
    got = values(doc)
    assert status == 200
    assert got["INSULT"] == pytest.approx(expected.insult)
    assert got["THREAT"] == pytest.approx(expected.threat)
    assert got["SEVERE_TOXICITY"] == pytest.approx(expected.severe_toxicity)
    assert got["IDENTITY_ATTACK"] == pytest.approx(expected.identity_attack)
    assert got["PROFANITY"] == pytest.approx(expected.profanity)
    assert "Moderation-Substituted-Attributes" not in headers


async def test_only_requested_attributes_at_or_above_their_threshold_are_answered(
    stack: Stack,
) -> None:
    doc = body(
        "you idiot",
        requestedAttributes={"TOXICITY": {"scoreThreshold": 0.5}, "SPAM": {"scoreThreshold": 0.5}},
        clientToken="c-42",
        doNotStore=True,
    )
    status, answer, _ = await post(stack, ANALYZE, doc)

    assert status == 200
    assert model_scores(stack, "you idiot").spam < 0.5  # so SPAM is left out
    assert set(answer["attributeScores"]) == {"TOXICITY"}
    assert answer["clientToken"] == "c-42"


async def test_html_is_scored_as_its_text(stack: Stack) -> None:
    html = '<p class="idiot">a <b>kind</b> word</p>'
    as_html = body("", doNotStore=True, spanAnnotations=True)
    as_html["comment"] = {"text": html, "type": "HTML"}
    _, scored_html, _ = await post(stack, ANALYZE, as_html)
    _, scored_plain, _ = await post(stack, ANALYZE, body(html, doNotStore=True))

    assert values(scored_html)["TOXICITY"] == pytest.approx(
        model_scores(stack, "a kind word").abuse
    )
    assert values(scored_plain)["TOXICITY"] > values(scored_html)["TOXICITY"]
    assert all("spanScores" not in v for v in scored_html["attributeScores"].values())


async def test_span_scores_cover_each_sentence_in_utf16_units(stack: Stack) -> None:
    text = "You idiot!  👍 Buy now. Lovely."
    status, doc, _ = await post(stack, ANALYZE, body(text, doNotStore=True, spanAnnotations=True))

    sentences = ["You idiot!", "👍 Buy now.", "Lovely."]
    starts = [text.index(s) for s in sentences]
    bounds = utf16_offsets(
        text, [o for s, b in zip(sentences, starts, strict=True) for o in (b, b + len(s))]
    )
    assert bounds == [0, 10, 12, 23, 24, 31]  # the emoji counts two UTF-16 units
    assert status == 200
    for attribute, label in (("TOXICITY", "abuse"), ("SPAM", "spam")):
        spans = doc["attributeScores"][attribute]["spanScores"]
        assert [(s["begin"], s["end"]) for s in spans] == list(
            zip(bounds[::2], bounds[1::2], strict=True)
        )
        expected = [getattr(model_scores(stack, s), label) for s in sentences]
        assert [s["score"]["value"] for s in spans] == pytest.approx(expected)


# doNotStore, and moderation when storing is allowed


async def test_do_not_store_leaves_no_trace(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "zq-marker-7f3a buy now you idiot"
    caplog.set_level(logging.DEBUG)
    status, _, _ = await post(
        stack, ANALYZE, body(marker, doNotStore=True, clientToken="t-1", spanAnnotations=True)
    )

    assert status == 200
    assert stored_rows(tmp_path) == []  # no comment, label or outbox record
    assert b"zq-marker" not in store_bytes(tmp_path)
    assert not any("zq-marker" in r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert stack.counted("analyze", "ok") == 1


async def test_without_do_not_store_the_comment_is_moderated_and_published(
    stack: Stack,
) -> None:
    doc = body("maybe", clientToken="comment-53922")
    status, first, _ = await post(stack, ANALYZE, doc)
    again_status, again, _ = await post(stack, ANALYZE, doc)

    [record] = await stack.store.outbox_pending(10)
    decision = json.loads(record.value)
    assert (status, again_status) == (200, 200)
    assert decision["comment_id"] == comment_id("comment-53922", "maybe")
    assert (decision["site_id"], decision["action"]) == ("herald", "review")
    assert values(first)["TOXICITY"] == pytest.approx(decision["scores"]["abuse"])
    assert values(again) == values(first)
    assert stack.model.calls == [1]  # asked again: the first decision, not scored again
    item = await stack.store.get_item("herald", decision["comment_id"])
    assert item.text == "maybe"  # a review joins the queue, as from /api/v1/moderate


async def test_without_a_client_token_the_text_makes_the_comment(stack: Stack) -> None:
    await post(stack, ANALYZE, body("lovely"))
    await post(stack, ANALYZE, body("lovely"))
    await post(stack, ANALYZE, body("lovely too"))

    ids = [json.loads(r.value)["comment_id"] for r in await stack.store.outbox_pending(10)]
    assert ids == [comment_id(None, "lovely"), comment_id(None, "lovely too")]


async def test_a_new_text_under_a_known_client_token_is_decided_anew(stack: Stack) -> None:
    # Perspective only echoes clientToken: clients reuse one per session or across an edit
    await post(stack, ANALYZE, body("a fine comment", clientToken="session-1"))
    _, edited, _ = await post(stack, ANALYZE, body("you idiot buy pills", clientToken="session-1"))
    _, again, _ = await post(stack, ANALYZE, body("you idiot buy pills", clientToken="session-1"))

    decisions = [json.loads(r.value) for r in await stack.store.outbox_pending(10)]
    assert [d["comment_id"] for d in decisions] == [
        comment_id("session-1", "a fine comment"),
        comment_id("session-1", "you idiot buy pills"),
    ]
    assert stack.model.calls == [1, 1]  # the edit scored, the repeat not
    assert values(edited)["TOXICITY"] == pytest.approx(decisions[1]["scores"]["abuse"])
    assert values(again) == values(edited)
    assert len({comment_id("ab", "c"), comment_id("a", "bc")}) == 2  # no seam between the two


# Keys, sites, limits


@pytest.mark.parametrize(
    ("key", "status", "google"),
    [
        (None, 403, "PERMISSION_DENIED"),
        ("not-a-key", 400, "INVALID_ARGUMENT"),
        ("moderator", 403, "PERMISSION_DENIED"),
        ("admin", 403, "PERMISSION_DENIED"),
    ],
    ids=["missing", "unknown", "moderator", "admin"],
)
async def test_only_a_site_key_is_a_key(
    stack: Stack, tmp_path: Path, key: str | None, status: int, google: str
) -> None:
    got, doc, _ = await post(stack, ANALYZE, body("maybe"), key=key)

    message = assert_google_error(got, doc, status, google)
    assert "key" in message.lower()
    assert stack.model.calls == []
    assert stored_rows(tmp_path) == []


async def test_a_key_given_twice_is_refused(stack: Stack) -> None:
    response = await stack.client.post(
        ANALYZE,
        params=[("key", stack.tokens["herald"]), ("key", stack.tokens["herald"])],
        json=body(doNotStore=True),
    )

    assert_google_error(response.status, await response.json(), 400, "INVALID_ARGUMENT")


async def test_the_key_may_come_in_googles_header(stack: Stack) -> None:
    response = await stack.client.post(
        ANALYZE, headers={"X-Goog-Api-Key": stack.tokens["herald"]}, json=body(doNotStore=True)
    )

    assert response.status == 200


async def test_a_key_for_several_sites_takes_the_site_from_community_id(stack: Stack) -> None:
    no_site, doc, _ = await post(stack, ANALYZE, body("maybe"), key="network")
    ok, _, _ = await post(stack, ANALYZE, body("maybe", communityId="tech-blog"), key="network")
    other, other_doc, _ = await post(
        stack, ANALYZE, body("maybe", communityId="elsewhere"), key="network"
    )

    assert "communityId" in assert_google_error(no_site, doc, 400, "INVALID_ARGUMENT")
    assert assert_google_error(other, other_doc, 403, "PERMISSION_DENIED")
    assert ok == 200
    [record] = await stack.store.outbox_pending(10)
    assert json.loads(record.value)["site_id"] == "tech-blog"


async def test_a_key_for_one_site_ignores_community_id(stack: Stack) -> None:
    status, _, _ = await post(stack, ANALYZE, body("maybe", communityId="Coral:https://x"))

    assert status == 200
    [record] = await stack.store.outbox_pending(10)
    assert json.loads(record.value)["site_id"] == "herald"


@pytest.mark.parametrize("stack", [{"rate": 1.0, "burst": 2.0}], indirect=True)
async def test_each_key_has_its_rate_limit_with_perspectives_429(stack: Stack) -> None:
    statuses = [(await post(stack, ANALYZE, body(doNotStore=True)))[0] for _ in range(2)]
    response = await stack.client.post(
        ANALYZE, params={"key": stack.tokens["herald"]}, json=body(doNotStore=True)
    )
    other, _, _ = await post(
        stack, ANALYZE, body(doNotStore=True, communityId="herald"), key="network"
    )

    assert statuses == [200, 200]
    message = assert_google_error(response.status, await response.json(), 429, "RESOURCE_EXHAUSTED")
    assert "Quota exceeded" in message
    assert response.headers["Retry-After"] == "1"
    assert other == 200  # another key, its own bucket
    stack.ticks.now += 1.0
    assert (await post(stack, ANALYZE, body(doNotStore=True)))[0] == 200
    assert stack.counted("analyze", "resource_exhausted") == 1


# Errors in Perspective's shape


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (body(requestedAttributes={"FLIRTATION": {}}), "Unknown attribute"),
        (body(requestedAttributes={"toxicity": {}}), "Unknown attribute"),
        (body(requestedAttributes={}), "requestedAttributes"),
        ({"comment": {"text": "x"}}, "requestedAttributes"),
        (body(""), "empty"),
        (body("   \n "), "empty"),
        ({"comment": {"text": "<p> </p>", "type": "HTML"}, "requestedAttributes": ALL}, "empty"),
        ({"requestedAttributes": ALL}, "comment"),
        ({"comment": {"text": 5}, "requestedAttributes": ALL}, "comment.text"),
        ({"comment": {"text": "x", "type": "MARKDOWN"}, "requestedAttributes": ALL}, "type"),
        (body(requestedAttributes={"TOXICITY": {"scoreType": "STD_DEV_SCORE"}}), "score type"),
        (body(requestedAttributes={"TOXICITY": {"scoreThreshold": 2}}), "scoreThreshold"),
        (body(requestedAttributes={"TOXICITY": {"scoreThreshold": True}}), "scoreThreshold"),
        (body(requestedAttributes={"TOXICITY": []}), "TOXICITY"),
        (body(languages="en"), "languages"),
        (body(languages=["English"]), "language code"),
        (body(languages=["de"]), "does not support request languages: de"),
        (body(languages=["de", "fr"]), "does not support request languages: de,fr"),
        (body(doNotStore="yes"), "doNotStore"),
        (body(clientToken=7), "clientToken"),
        (body("\ud800 lone surrogate"), "UTF-8"),
        (body("x" * 101), "too long"),
        ([1, 2], "JSON object"),
    ],
)
@pytest.mark.parametrize("stack", [{"max_text_chars": 100}], indirect=True)
async def test_a_bad_analyze_request_gets_invalid_argument(
    stack: Stack, tmp_path: Path, doc: Any, needle: str
) -> None:
    status, answer, _ = await post(stack, ANALYZE, doc)

    assert needle in assert_google_error(status, answer, 400, "INVALID_ARGUMENT")
    assert stack.model.calls == []
    assert stored_rows(tmp_path) == []
    assert stack.counted("analyze", "invalid_argument") == 1


@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b'{"comment": NaN}'],
    ids=["truncated", "empty", "not-utf8", "deep", "nan"],
)
async def test_a_body_that_is_not_json_gets_invalid_argument(stack: Stack, raw: bytes) -> None:
    status, answer, _ = await post(stack, ANALYZE, None, raw=raw)

    assert "JSON" in assert_google_error(status, answer, 400, "INVALID_ARGUMENT")


async def test_supported_languages_are_echoed(stack: Stack) -> None:
    status, doc, _ = await post(stack, ANALYZE, body(languages=["de", "en-GB"], doNotStore=True))

    assert status == 200
    assert doc["languages"] == ["de", "en-GB"]  # one of them is supported: scored in it


@pytest.mark.parametrize(
    "stack",
    [
        {
            "policy": Policy(
                "p-1",
                replace(POLICY.default, languages=LanguageRules(on_unsupported=LanguageMode.SCORE)),
            )
        }
    ],
    indirect=True,
)
async def test_a_site_that_scores_every_language_refuses_none(stack: Stack) -> None:
    status, _, _ = await post(stack, ANALYZE, body(languages=["de"], doNotStore=True))

    assert status == 200


DETECTING = {"language_detector": WordLanguageDetector}


@pytest.mark.parametrize("stack", [DETECTING], indirect=True)
@pytest.mark.parametrize(
    ("text", "languages", "detected"),
    [
        ("a fine comment", ["en"], ["en"]),  # detected, supported: scored as English
        ("ok!", [], []),  # too short to tell: scored, as the policy does
        ("kaboom of a detector", [], []),  # the detector fails: the language is unknown
    ],
)
async def test_without_languages_the_detected_one_is_used(
    stack: Stack, text: str, languages: list[str], detected: list[str]
) -> None:
    status, doc, _ = await post(stack, ANALYZE, body(text, doNotStore=True))

    assert status == 200
    assert (doc["languages"], doc["detectedLanguages"]) == (languages, detected)


@pytest.mark.parametrize("stack", [DETECTING], indirect=True)
async def test_a_detected_unsupported_language_gets_perspectives_error(stack: Stack) -> None:
    status, doc, _ = await post(stack, ANALYZE, body("merci pour cet article", doNotStore=True))

    message = assert_google_error(status, doc, 400, "INVALID_ARGUMENT")
    assert message == "Attribute TOXICITY does not support request languages: fr"
    assert stack.model.calls == []


@pytest.mark.parametrize("stack", [DETECTING], indirect=True)
async def test_the_clients_languages_win_over_detection(stack: Stack) -> None:
    status, doc, _ = await post(
        stack, ANALYZE, body("merci, you idiot", languages=["en"], doNotStore=True)
    )

    assert status == 200
    assert (doc["languages"], doc["detectedLanguages"]) == (["en"], ["fr"])


@pytest.mark.parametrize("stack", [DETECTING], indirect=True)
@pytest.mark.parametrize(("languages", "detected"), [([], True), (["en"], False)])
async def test_a_stored_decision_records_the_language(
    stack: Stack, languages: list[str], detected: bool
) -> None:
    await post(stack, ANALYZE, body("a fine comment", languages=languages))

    [record] = await stack.store.outbox_pending(10)
    decision = json.loads(record.value)
    assert decision["language"] == {"code": "en", "detected": detected}


@pytest.mark.parametrize(
    ("method", "path", "status", "google"),
    [
        ("POST", "/v1alpha1/comments:nothing", 404, "NOT_FOUND"),
        ("GET", ANALYZE, 405, "UNIMPLEMENTED"),
    ],
)
async def test_routing_errors_are_in_perspectives_shape(
    stack: Stack, method: str, path: str, status: int, google: str
) -> None:
    response = await stack.client.request(method, path, params={"key": stack.tokens["herald"]})

    assert_google_error(response.status, await response.json(), status, google)


async def test_an_oversized_body_is_refused_in_perspectives_shape(stack: Stack) -> None:
    response = await stack.client.post(
        ANALYZE,
        params={"key": stack.tokens["herald"]},
        data=io.BytesIO(b" " * (1024 * 1024 + 1)),
    )

    assert_google_error(response.status, await response.json(), 413, "INVALID_ARGUMENT")


@pytest.mark.parametrize("stack", [{"model": GatedClassifier}], indirect=True)
@pytest.mark.parametrize("do_not_store", [True, False])
async def test_past_the_budget_the_answer_is_deadline_exceeded(
    stack: Stack, do_not_store: bool
) -> None:
    started = time.monotonic()
    status, doc, _ = await post(stack, ANALYZE, body("maybe", doNotStore=do_not_store))
    elapsed = time.monotonic() - started

    assert_google_error(status, doc, 504, "DEADLINE_EXCEEDED")
    assert elapsed < BUDGET + 0.02 + 0.05  # budget + 20 ms, and the test client's own cost
    assert isinstance(stack.model, GatedClassifier)
    stack.model.gate.set()
    await stack.moderator.drain()
    assert len(await stack.store.outbox_pending(10)) == (0 if do_not_store else 1)


@pytest.mark.parametrize("do_not_store", [True, False])
async def test_a_model_failure_is_internal_and_says_nothing_of_the_text(
    stack: Stack, do_not_store: bool, caplog: pytest.LogCaptureFixture
) -> None:
    status, doc, _ = await post(stack, ANALYZE, body("explode zq-secret", doNotStore=do_not_store))

    message = assert_google_error(status, doc, 500, "INTERNAL")
    assert "zq-secret" not in message
    assert not any("zq-secret" in r.getMessage() for r in caplog.records)


def test_the_default_budget_fits_inside_corals_perspective_timeout(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)

    assert settings.perspective_budget_seconds < 0.8  # Coral's default Perspective timeout


# suggestscore


def suggestion(text: str, scores: dict[str, float], **fields: Any) -> dict[str, Any]:
    return {
        "comment": {"text": text},
        "attributeScores": {k: {"summaryScore": {"value": v}} for k, v in scores.items()},
        **fields,
    }


@pytest.mark.parametrize(
    ("scores", "label"),
    [
        ({"TOXICITY": 1.0}, TrainingLabel.ABUSE),
        ({"INSULT": 0.8, "SPAM": 0.1}, TrainingLabel.ABUSE),
        ({"SPAM": 0.9, "TOXICITY": 0.2}, TrainingLabel.SPAM),
        ({"TOXICITY": 0.0}, TrainingLabel.OK),
        ({"TOXICITY": 0.3, "SPAM": 0.4}, TrainingLabel.OK),
    ],
)
async def test_a_suggestion_becomes_a_human_label_of_the_keys_site(
    stack: Stack, scores: dict[str, float], label: TrainingLabel
) -> None:
    status, doc, _ = await post(
        stack, SUGGEST, suggestion("words", scores, clientToken="comment-1", languages=["en"])
    )

    assert status == 200
    assert doc == {
        "clientToken": "comment-1",
        "requestedLanguages": ["en"],
        "detectedLanguages": [],
    }
    [example] = await stack.store.labels()
    assert (example.site_id, example.text, example.label) == ("herald", "words", label)
    assert example.reason_source is ReasonSource.MODERATOR
    assert example.labelled_by == "perspective:herald-cms"
    assert example.comment_id == comment_id("comment-1", "words")
    assert example.overturned is False  # we never decided it


async def test_a_suggestion_lands_on_the_site_its_community_names(stack: Stack) -> None:
    await post(
        stack, SUGGEST, suggestion("w", {"TOXICITY": 1}, communityId="tech-blog"), key="network"
    )

    assert [e.site_id for e in await stack.store.labels()] == ["tech-blog"]
    assert await stack.store.labels(site_id="herald") == []


async def test_a_suggestion_about_a_comment_we_decided_may_overturn_it(stack: Stack) -> None:
    await post(stack, ANALYZE, body("buy now", clientToken="comment-9"))  # rejected: spam
    await post(stack, SUGGEST, suggestion("buy now", {"SPAM": 0.0}, clientToken="comment-9"))

    [example] = await stack.store.labels()
    assert example.comment_id == comment_id("comment-9", "buy now")
    assert (example.auto_action.value, example.final_action.value) == ("reject", "approve")
    assert example.overturned is True


@pytest.mark.parametrize(
    ("value", "label", "source"),
    [(1, TrainingLabel.ABUSE, ReasonSource.GUESSED), (0, TrainingLabel.OK, ReasonSource.MODERATOR)],
)
async def test_corals_rejections_say_rejected_not_why(
    stack: Stack, value: int, label: TrainingLabel, source: ReasonSource
) -> None:
    # Coral sends its configured model (TOXICITY) with 1 for every rejection, 0 for approvals
    coral = suggestion(
        "Great piece!",
        {"TOXICITY": value},
        communityId="Coral:https://herald.example",
        clientToken="comment:5b0a",
        languages=["en"],
    )
    await post(stack, SUGGEST, coral)

    [example] = await stack.store.labels()
    assert (example.label, example.reason_source) == (label, source)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (suggestion("w", {}), "attributeScores"),
        (suggestion("w", {"FLIRTATION": 1}), "Unknown attribute"),
        (suggestion("w", {"TOXICITY": 2}), "from 0 to 1"),
        (suggestion("", {"TOXICITY": 1}), "empty"),
        (suggestion("w", {"TOXICITY": 1}, languages=["de"]), "does not support"),
        ({"comment": {"text": "w"}, "attributeScores": {"TOXICITY": {}}}, "must not be empty"),
        (
            {"comment": {"text": "w"}, "attributeScores": {"TOXICITY": {"spanScores": [{}]}}},
            "summaryScore",
        ),
    ],
)
async def test_a_bad_suggestion_gets_invalid_argument_and_no_label(
    stack: Stack, doc: Any, needle: str
) -> None:
    status, answer, _ = await post(stack, SUGGEST, doc)

    assert needle in assert_google_error(status, answer, 400, "INVALID_ARGUMENT")
    assert await stack.store.labels() == []
