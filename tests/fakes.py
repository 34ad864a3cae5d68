"""Small in-memory fakes of the service's ports, for unit tests of pure code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.domain.model import Comment, Language, Scores


@dataclass
class KeywordClassifier:
    """Scores by keywords in the text: 'buy' is spam, 'idiot' is abuse, 'maybe' is in between.
    The word 'explode' makes it raise, as a broken model would."""

    version: str = "fake-1"
    calls: list[int] = field(default_factory=list)

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        self.calls.append(len(comments))
        out = []
        for c in comments:
            text = c.text.lower()
            if "explode" in text:
                raise RuntimeError("model exploded")
            spam = 0.99 if "buy" in text else 0.6 if "maybe" in text else 0.01
            abuse = 0.97 if "idiot" in text else 0.02
            out.append(Scores(spam=spam, abuse=abuse))
        return out


@dataclass
class FixedClock:
    moment: datetime = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


@dataclass
class WordLanguageDetector:
    """French if the text has 'merci' or 'bonjour', undetermined if it is shorter than 4
    characters, English otherwise. 'kaboom' makes it raise, as a broken detector would."""

    calls: list[list[str]] = field(default_factory=list)

    def detect(self, texts: Sequence[str]) -> list[Language]:
        self.calls.append(list(texts))
        if any("kaboom" in t for t in texts):
            raise RuntimeError("detector exploded")
        return [self._one(t.lower()) for t in texts]

    @staticmethod
    def _one(text: str) -> Language:
        if "merci" in text or "bonjour" in text:
            return Language("fr", detected=True, confidence=0.99)
        if len(text) < 4:
            return Language("und", detected=True, confidence=0.1)
        return Language("en", detected=True, confidence=0.95)
