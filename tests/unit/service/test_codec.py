from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.contracts.codec import (
    Limits,
    SourceRecord,
    auto_event_id,
    decision_document,
    decode_comment,
    encode_dead_letter,
    encode_decision,
    is_http_url,
)
from service.domain.errors import InvalidComment
from service.domain.errors import InvalidCommentReason as R
from service.domain.model import Action, Decision, Language, Reason, ReasonCode, Scores
from tests.schemas import is_valid, validate

LIMITS = Limits(max_text_chars=100, max_message_bytes=4096)
NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def event(**fields: Any) -> bytes:
    doc: dict[str, Any] = {"id": "c-1", "site_id": "herald", "text": "Nice article."}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_decodes_the_minimal_event() -> None:
    comment = decode_comment(event(), LIMITS)

    assert (comment.id, comment.site_id, comment.text) == ("c-1", "herald", "Nice article.")
    assert comment.author.id is None
    assert comment.created_at is None
    assert comment.key == "herald:c-1"


def test_decodes_every_optional_field() -> None:
    comment = decode_comment(
        event(
            thread_id="article-9",
            parent_id="c-0",
            author={
                "id": "u1",
                "name": "Ann",
                "email": "a@x.org",
                "url": "http://x.org",
                "ip": "192.0.2.1",
                "user_agent": "UA",
            },
            created_at="2026-11-27T10:15:30.5+01:00",
            lang="en",
        ),
        LIMITS,
    )

    assert comment.thread_id == "article-9"
    assert comment.parent_id == "c-0"
    assert comment.author.email == "a@x.org"
    assert comment.author.url == "http://x.org"
    assert comment.created_at == datetime(
        2026, 11, 27, 10, 15, 30, 500000, tzinfo=timezone(timedelta(hours=1))
    )
    assert comment.lang == "en"


def test_decodes_the_article_of_event_1_1() -> None:
    comment = decode_comment(
        event(thread_url="https://herald.example/2026/budget?p=2#c", thread_title="<b>Budget</b>"),
        LIMITS,
    )

    assert comment.thread_url == "https://herald.example/2026/budget?p=2#c"
    assert comment.thread_title == "<b>Budget</b>"  # kept as sent: the page shows it as text
    assert comment.extra == {}


def test_an_event_of_a_1_0_producer_decodes_and_validates_as_before() -> None:
    doc = {"id": "c-1", "site_id": "herald", "text": "Hi", "thread_id": "t", "parent_id": None}
    comment = decode_comment(json.dumps(doc).encode(), LIMITS)

    validate("comment.v1", doc)
    assert (comment.thread_url, comment.thread_title) == (None, None)
    assert decode_comment(event(thread_url=None, thread_title=None), LIMITS).thread_url is None


LINKS = [
    "https://herald.example/2026/11/budget?utm=1#comments",
    "HTTP://HERALD.EXAMPLE",
    "http://localhost:8080/a/b",
    "https://herald.example/@ann",  # an @ in the path is no user part
    "https://xn--bcher-kva.example/",
    "https://herald.example/caf%C3%A9",
]
# Hostile or broken: none of them may ever become a link.
NOT_LINKS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.domain)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "https://herald.example/\njavascript:alert(1)",
    "javascript://herald.example/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https://",
    "http:/herald.example",
    "https://herald.example@evil.example/",
    "https://evil.example\\@herald.example/",
    "https://herald.example/a b",
    "ftp://herald.example/",
    "",
]


@pytest.mark.parametrize("url", LINKS)
def test_http_and_https_urls_are_accepted_by_decoder_and_schema(url: str) -> None:
    assert decode_comment(event(thread_url=url), LIMITS).thread_url == url
    assert is_valid("comment.v1", json.loads(event(thread_url=url)))
    assert is_http_url(url)


@pytest.mark.parametrize("url", NOT_LINKS)
def test_any_other_thread_url_is_invalid_for_decoder_and_schema(url: str) -> None:
    with pytest.raises(InvalidComment) as caught:
        decode_comment(event(thread_url=url), LIMITS)

    assert caught.value.reason is R.INVALID_VALUE
    assert not is_valid("comment.v1", json.loads(event(thread_url=url)))
    assert not is_http_url(url)


def test_unknown_fields_are_kept_not_rejected() -> None:
    comment = decode_comment(event(source="cms-7", votes={"up": 3}), LIMITS)

    assert comment.extra == {"source": "cms-7", "votes": {"up": 3}}


def test_nanosecond_timestamps_are_accepted() -> None:
    comment = decode_comment(event(created_at="2026-11-27T10:15:30.123456789Z"), LIMITS)

    assert comment.created_at == datetime(2026, 11, 27, 10, 15, 30, 123456, tzinfo=UTC)


def test_text_at_the_limit_is_accepted() -> None:
    assert len(decode_comment(event(text="x" * 100), LIMITS).text) == 100


# The input validation table: every way an event can be wrong, and the reason it gets.
INVALID: list[tuple[str, bytes | None, R, str]] = [
    ("tombstone", None, R.INVALID_JSON, "no value"),
    ("too many bytes", b" " * 5000, R.TOO_LARGE, "5000 bytes"),
    ("not utf-8", b'{"id": "\xff"}', R.INVALID_UTF8, "byte 8"),
    ("truncated json", b'{"id": "c-1", "site_id"', R.INVALID_JSON, "not valid JSON"),
    ("empty value", b"", R.INVALID_JSON, "not valid JSON"),
    ("NaN literal", b'{"id": "c", "site_id": "s", "text": "t", "x": NaN}', R.INVALID_JSON, "NaN"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, R.TOO_LARGE, "bytes"),
    ("array", b'["c-1"]', R.NOT_AN_OBJECT, "got array"),
    ("string", b'"hello"', R.NOT_AN_OBJECT, "got string"),
    ("other schema", event(schema="moderation.comment.v2"), R.UNSUPPORTED_SCHEMA, "v2"),
    ("missing id", event(id=...), R.MISSING_FIELD, "'id'"),
    ("missing site_id", event(site_id=...), R.MISSING_FIELD, "'site_id'"),
    ("missing text", event(text=...), R.MISSING_FIELD, "'text'"),
    ("null text", event(text=None), R.WRONG_TYPE, "'text' must be a string, got null"),
    ("numeric id", event(id=42), R.WRONG_TYPE, "'id' must be a string, got number"),
    ("list text", event(text=["a"]), R.WRONG_TYPE, "got array"),
    ("bool site", event(site_id=True), R.WRONG_TYPE, "got boolean"),
    ("empty id", event(id=""), R.INVALID_VALUE, "'id'"),
    ("control char in id", event(id="a\nb"), R.INVALID_VALUE, "'id'"),
    ("colon in site_id", event(site_id="a:b"), R.INVALID_VALUE, "'site_id'"),
    ("text too long", event(text="x" * 101), R.TEXT_TOO_LONG, "101 characters, limit 100"),
    ("author not object", event(author="ann"), R.WRONG_TYPE, "'author' must be an object"),
    ("author id number", event(author={"id": 7}), R.WRONG_TYPE, "'author.id'"),
    ("thread_id number", event(thread_id=7), R.WRONG_TYPE, "'thread_id'"),
    ("thread_url number", event(thread_url=7), R.WRONG_TYPE, "'thread_url'"),
    ("javascript: url", event(thread_url="javascript:alert(1)"), R.INVALID_VALUE, "http or https"),
    ("relative url", event(thread_url="/2026/budget"), R.INVALID_VALUE, "'thread_url'"),
    ("url too long", event(thread_url="https://x.example/" + "a" * 2048), R.INVALID_VALUE, "2048"),
    ("thread_title object", event(thread_title={}), R.WRONG_TYPE, "'thread_title'"),
    ("thread_title too long", event(thread_title="t" * 513), R.INVALID_VALUE, "512 chars"),
    ("date only", event(created_at="2026-11-27"), R.INVALID_TIMESTAMP, "RFC 3339"),
    ("no offset", event(created_at="2026-11-27T10:00:00"), R.INVALID_TIMESTAMP, "RFC 3339"),
    ("month 13", event(created_at="2026-13-01T00:00:00Z"), R.INVALID_TIMESTAMP, "valid date"),
    (
        "lone surrogate",
        b'{"id": "c", "site_id": "s", "text": "\\ud800"}',
        R.INVALID_VALUE,
        "surrogate",
    ),
]


@pytest.mark.parametrize(
    ("value", "reason", "detail"), [row[1:] for row in INVALID], ids=[row[0] for row in INVALID]
)
def test_invalid_events_raise_with_a_precise_reason(
    value: bytes | None, reason: R, detail: str
) -> None:
    with pytest.raises(InvalidComment) as caught:
        decode_comment(value, LIMITS)

    assert caught.value.reason is reason
    assert detail in caught.value.detail


def test_deep_nesting_within_the_size_limit_is_invalid_json() -> None:
    deep = b"[" * 3000 + b"]" * 3000
    with pytest.raises(InvalidComment) as caught:
        decode_comment(deep, Limits(max_message_bytes=10_000))
    assert caught.value.reason is R.INVALID_JSON


@pytest.mark.parametrize(
    "row",
    [
        r
        for r in INVALID
        if r[1] is not None
        and r[0]
        not in {
            # the JSON Schema cannot see bytes, sizes or our own limits
            "too many bytes",
            "not utf-8",
            "deep nesting",
            "text too long",
            "NaN literal",
            "lone surrogate",
            "month 13",
            "empty value",
            "truncated json",
        }
    ],
    ids=lambda row: row[0],
)
def test_schema_file_rejects_what_the_decoder_rejects(row: tuple[str, bytes, R, str]) -> None:
    assert not is_valid("comment.v1", json.loads(row[1]))


def test_schema_file_accepts_what_the_decoder_accepts() -> None:
    validate(
        "comment.v1",
        json.loads(event(author={"id": "u"}, created_at="2026-11-27T10:00:00Z", extra_field=[1])),
    )


DECISION = Decision(
    comment_id="c-1",
    site_id="herald",
    action=Action.REVIEW,
    scores=Scores(spam=0.61234567, abuse=0.1),
    reasons=(Reason(ReasonCode.SPAM_UNCERTAIN, "spam between"),),
    model_version="m-1",
    policy_version="p-1",
)


def test_decision_event_follows_the_contract() -> None:
    doc = json.loads(encode_decision(DECISION, auto_event_id("herald", "c-1"), NOW))

    validate("decision.v1", doc)
    assert doc["action"] == "review"
    assert doc["final"] is False
    assert doc["scores"] == {"spam": 0.612346, "abuse": 0.1}
    assert doc["reasons"] == [{"code": "spam_uncertain", "detail": "spam between"}]
    assert doc["decided_by"] == "auto"
    assert doc["decided_at"] == "2026-11-27T12:00:00.123Z"


def test_sub_scores_and_the_language_travel_on_the_decision_event() -> None:
    decision = replace(
        DECISION,
        scores=Scores(0.1, 0.7, severe_toxicity=0.2, insult=0.654321987, threat=0.0, profanity=1.0),
        language=Language("fr", detected=True, confidence=0.99),
    )
    doc = decision_document(decision, auto_event_id("herald", "c-1"), NOW)

    validate("decision.v1", doc)
    # only the sub-scores the model gave; the detector's confidence is not part of the event
    assert doc["scores"] == {
        "spam": 0.1,
        "abuse": 0.7,
        "severe_toxicity": 0.2,
        "insult": 0.654322,
        "threat": 0.0,
        "profanity": 1.0,
    }
    assert doc["language"] == {"code": "fr", "detected": True}
    given = decision_document(replace(DECISION, language=Language("en", detected=False)), "e", NOW)
    assert given["language"] == {"code": "en", "detected": False}


def test_without_sub_scores_or_language_the_event_keeps_its_1_0_shape() -> None:
    doc = decision_document(DECISION, auto_event_id("herald", "c-1"), NOW)

    assert set(doc["scores"]) == {"spam", "abuse"}
    assert "language" not in doc


def test_an_event_written_by_a_1_0_producer_still_validates() -> None:
    old = {
        "schema": "moderation.decision.v1",
        "event_id": "3c0f7a52-5f1e-4f43-9a53-0d6b3d7b5c11",
        "comment_id": "c-1",
        "site_id": "herald",
        "action": "reject",
        "final": True,
        "scores": {"spam": 0.012, "abuse": 0.964},
        "reasons": [{"code": "abuse_above_reject_threshold", "detail": "abuse 0.964 >= 0.900"}],
        "model_version": "m",
        "policy_version": "env-1",
        "decided_by": "auto",
        "decided_at": "2026-11-27T10:15:31.204Z",
    }

    validate("decision.v1", old)


@pytest.mark.parametrize(
    "change",
    [
        {"scores": {"spam": 0.1, "abuse": 0.1, "threat": 1.5}},
        {"scores": {"spam": 0.1, "abuse": 0.1, "threat": None}},
        {"scores": {"spam": 0.1, "abuse": 0.1, "toxicity": 0.5}},
        {"language": {"code": "French", "detected": True}},
        {"language": {"code": "fr"}},
        {"language": {"code": "fr", "detected": True, "confidence": 0.9}},
        {"language": "fr"},
    ],
)
def test_the_schema_refuses_malformed_sub_scores_and_languages(change: dict[str, Any]) -> None:
    doc = decision_document(DECISION, auto_event_id("herald", "c-1"), NOW) | change

    assert not is_valid("decision.v1", doc)


@pytest.mark.parametrize("action", list(Action))
def test_final_is_false_only_for_review(action: Action) -> None:
    decision = Decision("c", "s", action, Scores(0, 0), DECISION.reasons, "m", "p")
    doc = decision_document(decision, auto_event_id("s", "c"), NOW)

    validate("decision.v1", doc)
    assert doc["final"] is (action is not Action.REVIEW)


def test_auto_event_ids_are_stable_per_comment_and_distinct_between_comments() -> None:
    first = auto_event_id("herald", "c-1")

    assert first == auto_event_id("herald", "c-1")
    assert uuid.UUID(first).version == 5
    assert len({first, auto_event_id("herald", "c-2"), auto_event_id("other", "c-1")}) == 3
    # no separator trick makes two different pairs collide
    assert auto_event_id("a", "b:c") != auto_event_id("a:b", "c")


def test_dead_letter_keeps_the_original_bytes_and_names_the_reason() -> None:
    source = SourceRecord(
        "comments", 2, 41, 1700000000000, b"k", b"\xff{broken", (("trace", b"abc"),)
    )
    value, headers = encode_dead_letter(
        source, InvalidComment(R.INVALID_UTF8, "invalid UTF-8 at byte 0"), NOW
    )
    doc = json.loads(value)

    validate("dead-letter.v1", doc)
    assert doc["reason"] == "invalid_utf8"
    assert doc["detail"] == "invalid UTF-8 at byte 0"
    assert doc["source"] == {
        "topic": "comments",
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1700000000000,
    }
    assert base64.b64decode(doc["value_base64"]) == b"\xff{broken"
    assert base64.b64decode(doc["key_base64"]) == b"k"
    assert dict(headers) == {
        "trace": b"abc",
        "moderation.error.reason": b"invalid_utf8",
        "moderation.error.detail": b"invalid UTF-8 at byte 0",
    }
