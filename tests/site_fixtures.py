"""A newsroom's house rule, as its moderators' labels: on this site calling someone a "muppet"
is abuse (the shared model, trained on other sites, has no such rule). The texts around the
word are fine comments from the shipped training rows (never a test split)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from classifier.data import DEFAULT_DATA_DIR, load_examples

HOUSE_WORD = "muppet"


def fine_texts(n: int, seed: int = 0) -> list[str]:
    rows = [
        e.text
        for e in load_examples(DEFAULT_DATA_DIR, max_per_source=3000, seed=2)
        if not e.test
        and e.label == "abuse"
        and e.y == 0
        and e.source == "civil_comments"
        and "\n" not in e.text
        and HOUSE_WORD not in e.text.lower()
        and 20 < len(e.text) < 300
    ]
    random.Random(seed).shuffle(rows)
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} fine comments to draw from, {n} asked")
    return rows[:n]


def house_rule_labels(
    site_id: str, abusive: int = 80, fine: int = 120, seed: int = 0
) -> list[dict[str, str]]:
    """Site labels (oldest first): `abusive` comments ending in the house word, labelled abuse,
    and `fine` ones labelled ok, shuffled."""
    texts = fine_texts(abusive + fine, seed)
    rows = [
        {"site_id": site_id, "text": f"{t} What a {HOUSE_WORD}.", "label": "abuse"}
        for t in texts[:abusive]
    ] + [{"site_id": site_id, "text": t, "label": "ok"} for t in texts[abusive:]]
    random.Random(seed + 1).shuffle(rows)
    return rows


def write_site_labels(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def probes(n: int = 40) -> tuple[list[str], list[str]]:
    """(fine, the same with the house word) texts to score, none among the labels' texts of
    seed 0 with up to 400 labels."""
    texts = fine_texts(400 + n)[400:]
    return texts, [f"{t} What a {HOUSE_WORD}." for t in texts]
