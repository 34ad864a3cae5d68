"""The label names and their fixed order.  Everything indexes scores through these."""

from __future__ import annotations

from typing import Final

SPAM: Final = "spam"
ABUSE: Final = "abuse"
LABELS: Final[tuple[str, str]] = (SPAM, ABUSE)

# Abuse sub-scores (Perspective's production attributes besides toxicity = our abuse),
# each an estimate of the share of raters who would say the comment is that.
SEVERE_TOXICITY: Final = "severe_toxicity"
INSULT: Final = "insult"
THREAT: Final = "threat"
IDENTITY_ATTACK: Final = "identity_attack"
PROFANITY: Final = "profanity"
SUBSCORES: Final[tuple[str, str, str, str, str]] = (
    SEVERE_TOXICITY,
    INSULT,
    THREAT,
    IDENTITY_ATTACK,
    PROFANITY,
)
