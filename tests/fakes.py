"""Small in-memory fakes of the service's ports, for unit tests of pure code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.domain.model import Comment, Scores


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
