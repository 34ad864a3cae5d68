"""What the rules look at besides the scores: links in the text, and the state the pipeline
passes in (an author's activity, a text's spread). Pure: no I/O, no clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol

from service.domain.model import Language

# A URL with a scheme, or a bare www. host. Linear: no nested quantifiers.
_URL: Final = re.compile(r"(?i)\b(?:https?://|www\.)([a-z0-9.-]{1,253})")
_IDN_DOT: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class TextPattern(Protocol):
    """A compiled pattern that runs in linear time (the policy loader uses RE2)."""

    def search(self, text: str) -> object | None: ...


@dataclass(frozen=True, slots=True)
class NamedPattern:
    """A term or regular expression, and the label a reason quotes for it."""

    label: str
    pattern: TextPattern

    def found_in(self, text: str) -> bool:
        return self.pattern.search(text) is not None


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What the rules need to know beyond the comment, gathered by the pipeline from the
    store and the batch. Counts include the comment being decided."""

    normalized_text: str
    author_prior_comments: int | None = None  # before this one; None: no author id
    author_recent_comments: int = 1  # in the site's flood window
    campaign_authors: int = 1  # distinct authors of the same text in the campaign window
    language: Language | None = None  # the event's `lang`, else the detector's; None: neither


def link_domains(text: str) -> tuple[str, ...]:
    """The host of every link in the text, lower case, without a leading www."""
    hosts = []
    for match in _URL.finditer(text.translate(_IDN_DOT)):
        host = match.group(1).lower().strip(".")
        hosts.append(host.removeprefix("www."))
    return tuple(h for h in hosts if "." in h)


def domain_in(host: str, domains: frozenset[str]) -> str | None:
    """The listed domain `host` is or belongs to (`a.spam.example` is in `spam.example`)."""
    parts = host.split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in domains:
            return candidate
    return None
