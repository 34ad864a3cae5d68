"""Hostile comment events: whatever bytes arrive, decoding yields a valid `Comment` or an
`InvalidComment` with a reason, and a batch yields exactly one output record per input."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.contracts.codec import Limits, SourceRecord, decode_comment, rfc3339
from service.domain.errors import InvalidComment, InvalidCommentReason
from service.domain.model import Comment
from service.domain.policy import Policy, Thresholds
from service.usecases.pipeline import Pipeline, Topics
from tests.fakes import FixedClock, KeywordClassifier
from tests.schemas import validate

# Small limits keep the examples small and still reach both sides of each limit.
LIMITS = Limits(max_text_chars=300, max_message_bytes=6_000)
TOPICS = Topics("comments", "decisions", "dlq")
POLICY = Policy.simple("p-1", Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))
FIELDS = ("schema", "id", "site_id", "text", "thread_id", "parent_id", "author", "created_at")
AUTHOR_FIELDS = ("id", "name", "email", "url", "ip", "user_agent")
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
# Strings a hostile producer picks: controls, bidi overrides, markup, astral characters.
nasty_text = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\x00", "\x1f", "\x7f", "\u202e", "\u2028", "<", '"', "\\", "\U0001f600"]),
    max_size=60,
)
timestamps = (
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-11-27T10:15:30.1234567890Z",
            "2026-02-30T10:15:30Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T10:15:30+99:99",
            "\u0662\u0660\u0662\u0666-11-27T10:15:30Z",
            "2026-11-27",
        ]
    )
    | nasty_text
)


def _valid_event() -> dict[str, Any]:
    return {
        "id": "c-1",
        "site_id": "herald",
        "text": "Thanks for the article",
        "author": {"id": "u-1", "name": "Ann"},
        "created_at": "2026-11-27T10:15:30Z",
    }


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with some fields replaced by values of any type or hostile strings."""
    doc: dict[str, Any] = _valid_event()
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        doc[name] = draw(
            json_values | nasty_text | (timestamps if name == "created_at" else st.nothing())
        )
    if draw(st.booleans()):
        author = draw(st.dictionaries(st.sampled_from(AUTHOR_FIELDS), json_values | nasty_text))
        doc["author"] = author
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True)):
        doc.pop(name, None)
    if draw(st.booleans()):
        doc[draw(st.text(max_size=10))] = draw(json_values)
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def escaped_surrogates(draw: st.DrawFn) -> bytes:
    """Escaped lone (or reversed) surrogates in a field or a key: they parse as JSON but cannot
    be encoded again."""
    surrogate = draw(st.integers(0xD800, 0xDFFF))
    escape = draw(st.sampled_from([f"\\u{surrogate:04x}", f"\\u{surrogate:04X}"]))
    if draw(st.booleans()):
        escape += "\\ud800" if surrogate >= 0xDC00 else ""  # a low then a high: still unpaired
    where = draw(st.sampled_from(["text", "id", "thread_id", "author.name", "key", "extra"]))
    doc = json.dumps(_valid_event())
    if where == "author.name":
        doc = doc.replace('"Ann"', f'"A{escape}nn"')
    elif where == "key":
        doc = doc.replace('{"id"', f'{{"k{escape}": 1, "id"')
    elif where == "extra":
        doc = doc.replace('{"id"', f'{{"extra": ["{escape}"], "id"')
    else:
        doc = doc.replace(f'"{where}": "', f'"{where}": "x{escape}', 1)
        if where not in doc:
            doc = doc.replace('{"id"', f'{{"{where}": "{escape}", "id"')
    return doc.encode()


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 30_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["top", "text", "extra", "author", "schema"]))
    if where == "top":
        return inner.encode()
    doc = json.dumps(_valid_event())
    return doc.replace('{"id"', f'{{"{where}": {inner}, "id"', 1).encode()


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    raw = bytearray(json.dumps(_valid_event(), ensure_ascii=False).encode())
    bad = draw(
        st.sampled_from(
            [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80"]
        )
    )
    at = draw(st.integers(0, len(raw)))
    return bytes(raw[:at] + bad + raw[at:])


@st.composite
def huge_strings(draw: st.DrawFn) -> bytes:
    doc = _valid_event()
    name = draw(st.sampled_from(["text", "id", "site_id", "thread_id", "author"]))
    size = draw(
        st.sampled_from([LIMITS.max_text_chars, LIMITS.max_text_chars + 1, 256, 257, 2049, 5_999])
    )
    value = draw(st.sampled_from(["a", "\U0001f600", "\u00e9", "<"])) * size
    if name == "author":
        doc["author"] = {"name": value}
    else:
        doc[name] = value
    return json.dumps(doc, ensure_ascii=False).encode()


hostile_values = st.one_of(
    st.binary(max_size=300),
    mutated_events(),
    escaped_surrogates(),
    deep_json(),
    invalid_utf8(),
    huge_strings(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b""),
    st.just(b"NaN"),
    st.just(b'{"id": "c", "site_id": "s", "text": "t", "x": Infinity}'),
    st.just(b'{"id": "c", "site_id": "s", "text": "t", "x": ' + b"9" * 5000 + b"}"),
    st.just(b"{" + b" " * 6_001 + b"}"),
)


def _assert_valid(comment: Comment) -> None:
    assert 1 <= len(comment.id) <= 256
    assert not any(ord(ch) < 0x20 or ch == "\x7f" for ch in comment.id)
    assert comment.site_id.isascii()
    assert 1 <= len(comment.site_id) <= 128
    assert len(comment.text) <= LIMITS.max_text_chars
    # Every string can be written out again as UTF-8 (to the store, the decision, the page).
    json.dumps([comment.text, comment.extra], ensure_ascii=False).encode("utf-8")
    if comment.created_at is not None:
        assert comment.created_at.utcoffset() is not None
        rfc3339(comment.created_at)  # what the API shows
        ms = int(comment.created_at.timestamp() * 1000)  # what the store keeps
        datetime.fromtimestamp(ms / 1000, UTC)  # and reads back


def _decoded(value: bytes) -> Comment | InvalidComment:
    """The comment, or the `InvalidComment` raised; any other exception fails the test."""
    try:
        return decode_comment(value, LIMITS)
    except InvalidComment as error:
        return error


@PROPERTY
@given(hostile_values)
def test_any_value_decodes_to_a_valid_comment_or_an_invalid_comment_with_a_reason(
    value: bytes,
) -> None:
    outcome = _decoded(value)
    if isinstance(outcome, Comment):
        _assert_valid(outcome)
        return
    assert isinstance(outcome.reason, InvalidCommentReason)
    assert outcome.detail
    outcome.detail.encode("utf-8")  # the DLQ body holds it


def _record(offset: int, value: bytes | None, key: bytes | None) -> SourceRecord:
    headers = (("trace", b"\xff\x00"), ("moderation.error.reason", b"forged"))
    return SourceRecord("comments", offset % 3, offset, 1_700_000_000_000, key, value, headers)


def _check_outputs(records: Sequence[SourceRecord]) -> None:
    pipeline = Pipeline(KeywordClassifier(), POLICY, FixedClock(), TOPICS, LIMITS)
    outcome = pipeline.process_batch(records)
    assert len(outcome.records) == len(records)
    decided = [r for r in outcome.records if r.topic == TOPICS.decisions]
    dead = [r for r in outcome.records if r.topic == TOPICS.dead_letter]
    assert len(decided) + len(dead) == len(records)
    assert len(outcome.stored) == len(decided)
    sources = {(r.partition, r.offset): r for r in records}
    seen = set()
    for out in decided:
        validate("decision.v1", json.loads(out.value))
    for out in dead:
        body = json.loads(out.value)
        validate("dead-letter.v1", body)
        source = sources[body["source"]["partition"], body["source"]["offset"]]
        seen.add((source.partition, source.offset))
        assert body["value_base64"] == (
            None if source.value is None else base64.b64encode(source.value).decode()
        )
        assert out.key == source.key
        reasons = [v for k, v in out.headers if k == "moderation.error.reason"]
        assert reasons == [body["reason"].encode()]  # a forged reason header is not passed on
    assert len(seen) == len(dead)


@PROPERTY
@given(
    st.lists(
        st.tuples(
            hostile_values | st.none() | st.just(b'{"id":"x","site_id":"s","text":"explode"}'),
            st.none() | st.binary(max_size=20),
        ),
        max_size=12,
    )
)
def test_every_record_of_a_hostile_batch_has_exactly_one_output(
    values: list[tuple[bytes | None, bytes | None]],
) -> None:
    _check_outputs([_record(i, value, key) for i, (value, key) in enumerate(values)])


def test_a_timestamp_whose_offset_leaves_the_calendar_is_dead_lettered() -> None:
    # Found by the properties above: it decoded, was stored, and then every read of the
    # site's queue failed converting it back.
    for created_at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        value = json.dumps({**_valid_event(), "created_at": created_at}).encode()
        with pytest.raises(InvalidComment) as caught:
            decode_comment(value, LIMITS)
        assert caught.value.reason is InvalidCommentReason.INVALID_TIMESTAMP


def test_non_ascii_digits_are_not_an_rfc3339_timestamp() -> None:
    value = json.dumps(
        {**_valid_event(), "created_at": "\u0662\u0660\u0662\u0666-11-27T10:15:30Z"}
    ).encode()
    with pytest.raises(InvalidComment, match="not an RFC 3339 timestamp") as caught:
        decode_comment(value, LIMITS)
    assert caught.value.reason is InvalidCommentReason.INVALID_TIMESTAMP
