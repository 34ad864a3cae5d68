"""Cheap evasion tricks, for measuring how much recall survives them.

Each word of three or more letters is, with probability ``rate``, rewritten by one
randomly chosen trick: leetspeak, Cyrillic/Greek look-alikes, a zero-width character
inside, spaced-out letters, an elongated vowel, or random capitals.  These are the
tricks :func:`classifier.normalize.normalize` is meant to undo.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["TRICKS", "obfuscate"]

_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"})
_HOMOGLYPH = str.maketrans(
    {
        "a": "\u0430",
        "e": "\u0435",
        "o": "\u043e",
        "p": "\u0440",
        "c": "\u0441",
        "i": "\u0456",
        "x": "\u0445",
        "y": "\u0443",
        "s": "\u0455",
    }
)
_WORD_RE = re.compile(r"[A-Za-z]{3,}")
_VOWEL_RE = re.compile(r"[aeiouAEIOU]")


def _leet(word: str, rng: np.random.Generator) -> str:
    del rng
    return word.lower().translate(_LEET)


def _homoglyph(word: str, rng: np.random.Generator) -> str:
    del rng
    return word.translate(_HOMOGLYPH)


def _zero_width(word: str, rng: np.random.Generator) -> str:
    cut = int(rng.integers(1, len(word)))
    return word[:cut] + "\u200b" + word[cut:]


def _spaced(word: str, rng: np.random.Generator) -> str:
    sep = " " if rng.random() < 0.7 else "."
    return sep.join(word)


def _elongate(word: str, rng: np.random.Generator) -> str:
    m = _VOWEL_RE.search(word)
    if m is None:
        return word + word[-1] * 3
    k = int(rng.integers(3, 6))
    return word[: m.start()] + m.group() * k + word[m.end() :]


def _random_case(word: str, rng: np.random.Generator) -> str:
    flips = rng.random(len(word)) < 0.5
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


TRICKS = (_leet, _homoglyph, _zero_width, _spaced, _elongate, _random_case)


def obfuscate(text: str, rng: np.random.Generator, rate: float = 0.5) -> str:
    """Rewrite roughly ``rate`` of the words of ``text`` with a random trick each."""

    def sub(m: re.Match[str]) -> str:
        if rng.random() >= rate:
            return m.group()
        trick = TRICKS[int(rng.integers(len(TRICKS)))]
        return trick(m.group(), rng)

    return _WORD_RE.sub(sub, text)
