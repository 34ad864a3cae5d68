"""Sentence spans of a comment, in Perspective's units: UTF-16 code units, end exclusive."""

from __future__ import annotations

import re
from typing import Final

MAX_SPANS: Final = 50  # past this, the rest of the comment is one last span
# a sentence ends at . ! ? … (and any closing quotes or brackets) before a space, or at a line
_END: Final = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")


def sentences(text: str, limit: int = MAX_SPANS) -> list[tuple[int, int]]:
    """(begin, end) of each sentence in code points, surrounding white space left out."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        if len(bounds) == limit - 1:
            break
        _add(text, start, match.end(), bounds)
        start = match.end()
    _add(text, start, len(text), bounds)
    return bounds


def _add(text: str, start: int, end: int, bounds: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        begin = start + (len(piece) - len(piece.lstrip()))
        bounds.append((begin, begin + len(stripped)))


def utf16_offsets(text: str, offsets: list[int]) -> list[int]:
    """Code-point offsets (ascending) as UTF-16 code-unit offsets: a character outside the
    Basic Multilingual Plane (an emoji) counts twice."""
    out = []
    units = 0
    previous = 0
    for offset in offsets:
        units += sum(2 if ord(c) > 0xFFFF else 1 for c in text[previous:offset])
        previous = offset
        out.append(units)
    return out
