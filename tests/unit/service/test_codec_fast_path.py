"""The typed decoder of comment events agrees with the field-by-field reader on every input:
the same `Comment`, or the same dead-letter reason and detail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.contracts.codec import (
    Limits,
    _fast_comment,
    auto_event_id,
    decision_document,
    decode_comment,
    decode_comment_by_field,
    encode_decision,
)
from service.domain.errors import InvalidComment
from service.domain.model import Action, Comment, Decision, Language, Reason, ReasonCode, Scores

LIMITS = Limits(max_text_chars=100, max_message_bytes=4096)
NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)
PROPERTY = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Decoder = Callable[[bytes | None, Limits], Comment]


def outcome(decode: Decoder, value: bytes | None) -> Comment | tuple[str, str]:
    try:
        return decode(value, LIMITS)
    except InvalidComment as error:
        return (error.reason.value, error.detail)


def agree(value: bytes | None) -> Comment | tuple[str, str]:
    fast = outcome(decode_comment, value)
    assert fast == outcome(decode_comment_by_field, value)
    return fast


FULL = {
    "schema": "moderation.comment.v1",
    "id": "c-1",
    "site_id": "herald",
    "text": "Nice article, thanks 😀",
    "thread_id": "article-9",
    "parent_id": "c-0",
    "author": {"id": "u1", "name": "Ann", "email": "a@x.org", "url": "http://x.org"},
    "created_at": "2026-11-27T10:15:30.123456789+01:00",
    "lang": "en",
    "thread_url": "https://herald.example/2026/budget?p=2#c",
    "thread_title": "<b>Budget</b>",
}


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_an_event_of_the_contracts_fields_takes_the_typed_decoder(ensure_ascii: bool) -> None:
    value = json.dumps(FULL, ensure_ascii=ensure_ascii).encode()

    comment = agree(value)

    assert comment == _fast_comment(value, LIMITS)
    assert isinstance(comment, Comment)
    assert comment.author.email == "a@x.org"


RAW = [
    b'{"id": "a", "site_id": "s", "text": "t", "id": "b"}',  # the last duplicate wins
    b'{"id": "a", "site_id": "s", "text": "t", "author": {"id": "u", "id": 3}}',
    b'\xef\xbb\xbf{"id": "a", "site_id": "s", "text": "t"}',  # a byte order mark
    b'{"id": "a", "site_id": "s", "text": "t\tab"}',  # a raw control character
    b'{"id": "a", "site_id": "s", "text": "\\ud83d\\ude00"}',  # an escaped pair
    b'{"id": "a", "site_id": "s", "text": "\\ude00"}',  # a lone low surrogate
    b'{"id": "a", "site_id": "s", "text": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"id": "a", "site_id": "s", "text": "\xc0\xaf"}',  # an overlong encoding
    b'{"id": "a", "site_id": "s", "text": "t", "author": {"id": "u", "x": [[[[1]]]]}}',
    b'{"id": "a", "site_id": "s", "text": "t", "author": null, "lang": null}',
    b'{"id": "a", "site_id": "s", "text": "t", "schema": null}',
    b'{"id": "a", "site_id": "s", "text": "t", "created_at": "2026-02-30T00:00:00Z"}',
    b'{"id": "a", "site_id": "s", "text": "t", "created_at": "0001-01-01T00:00:00+01:00"}',
    b'{"id": "a", "site_id": "s", "text": "t"} ',
    b'{"id": "a", "site_id": "s", "text": "t"}\x0c',
    b'{"id": "a", "site_id": "s", "text": "t", "thread_url": "https://h.example/\\u0000"}',
]


@pytest.mark.parametrize("value", RAW)
def test_edge_bytes_give_what_the_field_reader_gives(value: bytes) -> None:
    agree(value)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "a\nb",
            "x" * 101,
            "y" * 2049,
            "a:b",
            "moderation.comment.v2",
            "2026-11-27T10:00:00Z",
            "2026-11-27T10:00:00",
            "2026-13-01T00:00:00Z",
            "https://herald.example/a",
            "javascript:alert(1)",
            "t" * 513,
        ]
    )
)
KEYS = st.sampled_from(
    [
        *("schema", "id", "site_id", "text", "thread_id", "parent_id", "author", "created_at"),
        *("lang", "thread_url", "thread_title", "votes", "Text"),
    ]
)
AUTHOR = st.dictionaries(
    st.sampled_from(["id", "name", "email", "url", "ip", "user_agent", "x"]), SCALARS, max_size=4
)
VALUES = SCALARS | AUTHOR | st.lists(SCALARS, max_size=3)


@st.composite
def events(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc.update({"id": "c-1", "site_id": "herald", "text": "hello"})
    doc.update(draw(st.dictionaries(KEYS, VALUES, max_size=6)))
    value = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    cut = draw(st.sampled_from(["keep", "keep", "truncate", "insert"]))
    if cut == "truncate":
        return value[: draw(st.integers(0, len(value)))]
    if cut == "insert":
        at = draw(st.integers(0, len(value)))
        return value[:at] + draw(st.binary(min_size=1, max_size=3)) + value[at:]
    return value


@PROPERTY
@given(events())
def test_any_event_gives_what_the_field_reader_gives(value: bytes) -> None:
    agree(value)


NAMESPACE = uuid.UUID("6f1c1d1e-6b5e-4c8e-9d38-4f0f3b5a2c11")  # never to change: replays


@PROPERTY
@given(st.text(max_size=20), st.text(max_size=40))
def test_auto_event_ids_are_the_name_based_uuids_they_always_were(site: str, cid: str) -> None:
    assert auto_event_id(site, cid) == str(uuid.uuid5(NAMESPACE, f"auto\x1f{site}\x1f{cid}"))


PROBABILITY = st.floats(0.0, 1.0) | st.sampled_from([0.0, 1.0, 1e-7, 5e-6, 0.5])


@PROPERTY
@given(
    st.tuples(PROBABILITY, PROBABILITY),
    st.lists(PROBABILITY | st.none(), min_size=5, max_size=5),
    st.text(max_size=30),
    st.sampled_from(list(Action)),
    st.none() | st.builds(Language, st.sampled_from(["en", "und"]), st.booleans()),
)
def test_an_encoded_decision_is_its_document_in_compact_json(
    labels: tuple[float, float],
    subs: list[float | None],
    detail: str,
    action: Action,
    language: Language | None,
) -> None:
    decision = Decision(
        "c-1",
        "herald",
        action,
        Scores(*labels, *subs),
        (Reason(ReasonCode.BELOW_THRESHOLDS, detail),),
        "m-1",
        "p-1",
        language=language,
    )
    document = decision_document(decision, auto_event_id("herald", "c-1"), NOW)

    encoded = encode_decision(decision, auto_event_id("herald", "c-1"), NOW)

    # the same values in the same order (tiny floats may be spelt 1e-6, not 1e-06)
    assert json.loads(encoded) == document
    assert list(json.loads(encoded)) == list(document)
