"""The label names and their fixed order.  Everything indexes scores through these."""

from __future__ import annotations

from typing import Final

SPAM: Final = "spam"
ABUSE: Final = "abuse"
LABELS: Final[tuple[str, str]] = (SPAM, ABUSE)
