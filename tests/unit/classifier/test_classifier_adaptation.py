"""The per-site learning curve of `python -m classifier evaluate --adaptation`."""

from __future__ import annotations

import pytest

from classifier import ABUSE
from classifier.adaptation import adaptation_curve, render_curve
from classifier.data import CIVIL_SOURCE, DEFAULT_DATA_DIR, NEWS_SOURCES, Example, load_examples
from classifier.sites import SiteRule
from classifier.train import TrainConfig
from tests.classifier_fixtures import TINY_ROWS_PER_SOURCE
from tests.site_fixtures import HOUSE_WORD, fine_texts

SIZES = (0, 100, 250)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    """The tiny training set with the news sources replaced by one site whose moderators have
    a house rule the other sources never show: a comment calling someone a muppet is abuse."""
    rest = [
        e
        for e in load_examples(DEFAULT_DATA_DIR, max_per_source=TINY_ROWS_PER_SOURCE, seed=0)
        if e.source not in NEWS_SOURCES
    ]
    texts = fine_texts(600)
    house = [
        Example(f"{t} What a {HOUSE_WORD}." if i % 2 else t, ABUSE, i % 2, CIVIL_SOURCE, False)
        for i, t in enumerate(texts)
    ]
    return rest + house


def test_a_new_sites_labels_raise_its_roc_auc_on_the_rows_it_did_not_label(
    examples: list[Example],
) -> None:
    points = adaptation_curve(examples, TrainConfig(), 0, sizes=SIZES, labels=[ABUSE])
    assert {(p.label, p.source) for p in points} == {(ABUSE, CIVIL_SOURCE)}
    by_size = {p.labels: p for p in points}
    assert sorted(by_size) == list(SIZES)
    # Every size is scored on the same rows: those after the largest size's labels.
    assert {p.scored for p in points} == {600 - 250}
    assert by_size[0].gain == 0.0
    assert not by_size[0].kept
    assert by_size[250].kept
    assert by_size[250].gain > 0.1
    table = render_curve(points, SIZES)
    assert "after 250 labels: mean gain +0." in table
    assert f"{CIVIL_SOURCE}" in table


def test_a_refused_adjustment_scores_exactly_as_the_shared_model(
    examples: list[Example],
) -> None:
    strict = SiteRule(min_labels=10_000)
    points = adaptation_curve(examples, TrainConfig(), 0, sizes=SIZES, labels=[ABUSE], rule=strict)
    assert [p.kept for p in points] == [False, False, False]
    assert {p.roc_auc for p in points} == {points[0].roc_auc}
    assert "*" in render_curve(points, SIZES)
