"""The Civil Comments loader: labels, sub-score fractions, de-duplication, bad rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from classifier.data import (
    ABUSE_SOURCES,
    CIVIL_SOURCE,
    DEFAULT_DATA_DIR,
    DataError,
    Example,
    load_examples,
)

HEADER = [
    "text",
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
    "sample",
]


def _data_dir(tmp_path: Path, rows: list[list[str]]) -> Path:
    root = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, root, ignore=shutil.ignore_patterns("civil_comments"))
    civil = root / "abuse" / CIVIL_SOURCE
    civil.mkdir()
    with (civil / "civil_comments_sample.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return root


def _civil(root: Path) -> list[Example]:
    return [e for e in load_examples(root) if e.source == CIVIL_SOURCE]


def test_civil_comments_is_an_abuse_source_of_the_shipped_data() -> None:
    assert CIVIL_SOURCE in ABUSE_SOURCES
    civil = [e for e in load_examples() if e.source == CIVIL_SOURCE]
    assert len(civil) > 15_000
    assert {e.y for e in civil} == {0, 1}
    assert any(e.test for e in civil)
    assert any(not e.test for e in civil)
    assert sum(e.subscores is not None for e in civil) > 9_000


def test_toxicity_fraction_at_half_is_abuse_and_subscores_follow_the_label_order(
    tmp_path: Path,
) -> None:
    root = _data_dir(
        tmp_path,
        [
            ["the mayor is a fool of zqx 7", "0.6", "0.1", "0.2", "0.0", "0.5", "0.0", "0.0", "s"],
            ["a fair point about taxes", "0.49", "", "", "", "", "", "", "s"],
        ],
    )
    by_text = {e.text: e for e in _civil(root)}
    fool = by_text["the mayor is a fool of zqx 7"]
    assert fool.y == 1
    # severe_toxicity, insult, threat, identity_attack, profanity (= obscene)
    assert fool.subscores == (0.1, 0.5, 0.0, 0.0, 0.2)
    fair = by_text["a fair point about taxes"]
    assert fair.y == 0
    assert fair.subscores is None


def test_rows_also_in_toxic_spans_or_repeated_are_dropped(tmp_path: Path) -> None:
    spans = next(e.text for e in load_examples() if e.source == "toxic_spans")
    root = _data_dir(
        tmp_path,
        [
            [spans.upper(), "0.9", "", "", "", "", "", "", "s"],
            ["Same   words here", "0.0", "", "", "", "", "", "", "s"],
            ["same words here", "0.0", "", "", "", "", "", "", "s"],
        ],
    )
    assert [e.text for e in _civil(root)] == ["Same   words here"]


def test_an_unreadable_fraction_is_a_data_error(tmp_path: Path) -> None:
    root = _data_dir(tmp_path, [["text", "high", "", "", "", "", "", "", "s"]])
    with pytest.raises(DataError, match="unreadable rater fraction"):
        load_examples(root)
