"""Perspective's request and response documents, and its errors. Pure: bytes in, values out.

Requests follow Perspective's reference (`AnalyzeCommentRequest`, `SuggestCommentScoreRequest`
of `commentanalyzer` v1alpha1). Fields we do not use (`sessionId`, `context`) are accepted and
ignored, as are unknown fields. Everything a client sends is hostile input: every string is
checked for type, length and encodability before it is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from service.domain.errors import ModerationError
from service.domain.html_text import html_to_text
from service.domain.language import given_language
from service.domain.model import Scores, SubScore

PROBABILITY: Final = "PROBABILITY"
SCORE_TYPES: Final = (PROBABILITY, "SCORE_TYPE_UNSPECIFIED")
HTML: Final = "HTML"
TEXT_TYPES: Final = ("PLAIN_TEXT", HTML, "TEXT_TYPE_UNSPECIFIED")
_SCORE_TYPES: Final = frozenset(SCORE_TYPES)
_PLAIN_TYPES: Final = frozenset(TEXT_TYPES) - {HTML}
# `comment.text` may be this many times the scored limit: HTML is scored as its text
HTML_TEXT_FACTOR: Final = 20
MAX_TOKEN_CHARS: Final = 4096  # clientToken, sessionId
MAX_COMMUNITY_CHARS: Final = 256
MAX_LANGUAGES: Final = 16


class ErrorKind(StrEnum):
    """Google's canonical error codes, the `status` of Perspective's error body."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    INTERNAL = "INTERNAL"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


class PerspectiveError(ModerationError):
    """A request Perspective would refuse, in its terms; the HTTP layer picks the status."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


def invalid(message: str) -> PerspectiveError:
    return PerspectiveError(ErrorKind.INVALID_ARGUMENT, message)


class Attribute(StrEnum):
    """Perspective's production attributes, and SPAM (one of its experimental ones)."""

    TOXICITY = "TOXICITY"
    SEVERE_TOXICITY = "SEVERE_TOXICITY"
    INSULT = "INSULT"
    PROFANITY = "PROFANITY"
    THREAT = "THREAT"
    IDENTITY_ATTACK = "IDENTITY_ATTACK"
    SPAM = "SPAM"


_SUB_SCORES: Final = {
    Attribute.SEVERE_TOXICITY: SubScore.SEVERE_TOXICITY,
    Attribute.INSULT: SubScore.INSULT,
    Attribute.PROFANITY: SubScore.PROFANITY,
    Attribute.THREAT: SubScore.THREAT,
    Attribute.IDENTITY_ATTACK: SubScore.IDENTITY_ATTACK,
}


def attribute_value(scores: Scores, attribute: Attribute) -> tuple[float, bool]:
    """The attribute's score, and whether the abuse score stood in for it.

    TOXICITY is our abuse score and SPAM our spam score. The other five are the model's abuse
    sub-scores; a model without them (None) is answered with the abuse score instead: each of
    them is a kind of abuse, so the abuse score is the higher, cautious stand-in, and a
    threshold on it flags at least what a true sub-score would."""
    if attribute is Attribute.TOXICITY:
        return scores.abuse, False
    if attribute is Attribute.SPAM:
        return scores.spam, False
    value = scores.sub(_SUB_SCORES[attribute])
    return (scores.abuse, True) if value is None else (value, False)


@dataclass(frozen=True, slots=True)
class Requested:
    attribute: Attribute
    threshold: float | None  # scores below it are left out of the answer


@dataclass(frozen=True, slots=True)
class CommentText:
    text: str  # what is scored: the text as sent, or the text of its HTML
    html: bool


@dataclass(frozen=True, slots=True)
class AnalyzeRequest:
    comment: CommentText
    attributes: tuple[Requested, ...]
    languages: tuple[str, ...]  # as sent
    do_not_store: bool
    span_annotations: bool
    client_token: str | None
    community_id: str | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    comment: CommentText
    scores: tuple[tuple[Attribute, float], ...]  # the summary scores the client suggests
    languages: tuple[str, ...]
    client_token: str | None
    community_id: str | None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _document(raw: bytes) -> Mapping[str, Any]:
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid("Invalid JSON payload received.") from None
    if not isinstance(doc, dict):
        raise invalid("Invalid JSON payload received: the body must be a JSON object.")
    return doc


def _string(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string.")
    if len(value) > limit:
        raise invalid(f"{name} is too long: {len(value)} characters, at most {limit}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{name} is not valid UTF-8.") from None
    return value


def _optional_string(doc: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = doc.get(name)
    return None if value is None else _string(value, name, limit)


def _flag(doc: Mapping[str, Any], name: str, default: bool) -> bool:
    value = doc.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false.")
    return value


def _object(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object.")
    return value


def _probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name} must be a number.")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise invalid(f"{name} must be from 0 to 1.")
    return number


def _attribute(name: str) -> Attribute:
    try:
        return Attribute(name)
    except ValueError:
        shown = json.dumps(name[:64])
        raise invalid(
            f"Unknown attribute: {shown}. Available: {', '.join(a.value for a in Attribute)}."
        ) from None


def _comment(doc: Mapping[str, Any], max_chars: int) -> CommentText:
    comment = _object(doc.get("comment"), "comment")
    text = _string(comment.get("text", ""), "comment.text", HTML_TEXT_FACTOR * max_chars)
    kind = comment.get("type")
    if kind is not None and kind != HTML and kind not in _PLAIN_TYPES:
        raise invalid('comment.type must be "PLAIN_TEXT" or "HTML".')
    html = kind == HTML
    scored = html_to_text(text) if html else text
    if not scored.strip():
        raise invalid("Comment text was empty.")
    if len(scored) > max_chars:
        raise invalid(
            f"Comment text too long: {len(scored)} characters, at most {max_chars} are scored."
        )
    return CommentText(scored, html)


def _languages(doc: Mapping[str, Any]) -> tuple[str, ...]:
    value = doc.get("languages")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LANGUAGES:
        raise invalid(f"languages must be a list of at most {MAX_LANGUAGES} language codes.")
    tags = tuple(_string(tag, "languages[]", 64) for tag in value)
    for tag in tags:
        if given_language(tag) is None:
            raise invalid(f"Unable to parse language code {json.dumps(tag)}.")
    return tags


def _requested(name: str, params: object) -> Requested:
    attribute = _attribute(name)
    options = _object(params, f"requestedAttributes.{attribute.value}")
    score_type = options.get("scoreType")
    if score_type is not None and score_type not in _SCORE_TYPES:
        raise invalid(f"Unsupported score type for {attribute.value}: only PROBABILITY.")
    threshold = options.get("scoreThreshold")
    return Requested(
        attribute,
        None
        if threshold is None
        else _probability(threshold, f"requestedAttributes.{attribute.value}.scoreThreshold"),
    )


def parse_analyze(raw: bytes, max_chars: int) -> AnalyzeRequest:
    doc = _document(raw)
    requested = doc.get("requestedAttributes")
    if not isinstance(requested, dict) or not requested:
        raise invalid("requestedAttributes must name at least one attribute.")
    _optional_string(doc, "sessionId", MAX_TOKEN_CHARS)
    return AnalyzeRequest(
        comment=_comment(doc, max_chars),
        attributes=tuple(_requested(str(name), params) for name, params in requested.items()),
        languages=_languages(doc),
        do_not_store=_flag(doc, "doNotStore", default=False),  # Perspective's default
        span_annotations=_flag(doc, "spanAnnotations", default=False),
        client_token=_optional_string(doc, "clientToken", MAX_TOKEN_CHARS),
        community_id=_optional_string(doc, "communityId", MAX_COMMUNITY_CHARS),
    )


def parse_suggestion(raw: bytes, max_chars: int) -> Suggestion:
    doc = _document(raw)
    given = doc.get("attributeScores")
    if not isinstance(given, dict) or not given:
        raise invalid("attributeScores must not be empty.")
    scores = []
    for name, value in given.items():
        attribute = _attribute(str(name))
        score = _object(value, f"attributeScores.{attribute.value}")
        summary = score.get("summaryScore")
        if summary is None:
            if not score.get("spanScores"):
                raise invalid(f"attributeScores.{attribute.value} must not be empty.")
            continue  # span scores alone say nothing about the whole comment: not learnt
        summary = _object(summary, f"attributeScores.{attribute.value}.summaryScore")
        kind = summary.get("type")
        if kind is not None and kind not in _SCORE_TYPES:
            raise invalid(f"Unsupported score type for {attribute.value}: only PROBABILITY.")
        name_of = f"attributeScores.{attribute.value}.summaryScore.value"
        scores.append((attribute, _probability(summary.get("value"), name_of)))
    if not scores:
        raise invalid("attributeScores needs a summaryScore for at least one attribute.")
    return Suggestion(
        comment=_comment(doc, max_chars),
        scores=tuple(scores),
        languages=_languages(doc),
        client_token=_optional_string(doc, "clientToken", MAX_TOKEN_CHARS),
        community_id=_optional_string(doc, "communityId", MAX_COMMUNITY_CHARS),
    )


Span = tuple[int, int, Scores]  # begin, end (UTF-16 code units, end exclusive), its scores


@dataclass(frozen=True, slots=True)
class AnalyzeAnswer:
    document: dict[str, Any]
    substituted: tuple[Attribute, ...]  # answered with the abuse score (see attribute_value)


def _score(value: float) -> dict[str, Any]:
    return {"value": round(value, 7), "type": PROBABILITY}


def analyze_answer(
    request: AnalyzeRequest,
    summary: Scores,
    spans: Sequence[Span],
    *,
    languages: Sequence[str],
    detected: Sequence[str],
) -> AnalyzeAnswer:
    """Perspective's `AnalyzeCommentResponse`: each requested attribute's summary score (and
    span scores, if any), unless below its `scoreThreshold`."""
    attributes: dict[str, Any] = {}
    substituted = []
    for wanted in request.attributes:
        value, stand_in = attribute_value(summary, wanted.attribute)
        if stand_in:
            substituted.append(wanted.attribute)
        floor = wanted.threshold
        if floor is not None and value < floor:
            continue
        entry: dict[str, Any] = {"summaryScore": _score(value)}
        span_scores = [
            {"begin": begin, "end": end, "score": _score(span_value)}
            for begin, end, scores in spans
            if (span_value := attribute_value(scores, wanted.attribute)[0]) >= (floor or 0.0)
        ]
        if span_scores:
            entry["spanScores"] = span_scores
        attributes[wanted.attribute.value] = entry
    document: dict[str, Any] = {
        "attributeScores": attributes,
        "languages": list(languages),
        "detectedLanguages": list(detected),
    }
    if request.client_token is not None:
        document["clientToken"] = request.client_token
    return AnalyzeAnswer(document, tuple(substituted))


def suggestion_answer(suggestion: Suggestion, *, detected: Sequence[str]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "requestedLanguages": list(suggestion.languages),
        "detectedLanguages": list(detected),
    }
    if suggestion.client_token is not None:
        document["clientToken"] = suggestion.client_token
    return document
