"""Comments with known labels, drawn from the shipped training rows (never a test split), for
tests of the learning loop: what a moderator would say about each."""

from __future__ import annotations

import random

from classifier.data import DEFAULT_DATA_DIR, load_examples
from service.domain.feedback import TrainingLabel

FLIPPED = {
    TrainingLabel.SPAM: TrainingLabel.OK,
    TrainingLabel.ABUSE: TrainingLabel.OK,
    TrainingLabel.OK: TrainingLabel.SPAM,
}


def labelled_texts(
    spam: int = 60, abuse: int = 50, ok: int = 90, seed: int = 0
) -> list[tuple[str, TrainingLabel]]:
    """Spam from YouTube and SMS, abuse and fine comments from news sites (ToxicSpans) and
    YouTube, shuffled; single-line texts only (kcat sends one record per line)."""
    rows = [
        e
        for e in load_examples(DEFAULT_DATA_DIR, max_per_source=2000, seed=1)
        if not e.test and "\n" not in e.text and "\x1f" not in e.text and e.text.strip()
    ]
    rng = random.Random(seed)
    rng.shuffle(rows)
    spam_rows = [e for e in rows if e.label == "spam" and e.y == 1]
    abuse_rows = [e for e in rows if e.label == "abuse" and e.y == 1 and e.source == "toxic_spans"]
    ok_rows = [e for e in rows if e.y == 0 and e.source in ("toxic_spans", "youtube")]
    picked = (
        [(e.text, TrainingLabel.SPAM) for e in spam_rows[:spam]]
        + [(e.text, TrainingLabel.ABUSE) for e in abuse_rows[:abuse]]
        + [(e.text, TrainingLabel.OK) for e in ok_rows[:ok]]
    )
    rng.shuffle(picked)
    return picked


def verdict(label: TrainingLabel) -> dict[str, str]:
    """The API decision a moderator gives for a comment with this label."""
    if label is TrainingLabel.OK:
        return {"action": "approve", "reason": "ok"}
    return {"action": "reject", "reason": label.value}
