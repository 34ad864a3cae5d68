"""Ports: what the core needs from the outside world, as Protocols. Adapters implement them;
tests pass small fakes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from service.domain.model import Comment, Scores


class Classifier(Protocol):
    """Scores comments for every label. Pure CPU; callers run it off the event loop."""

    @property
    def version(self) -> str: ...

    def score(self, comments: Sequence[Comment]) -> list[Scores]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
