"""Source weighting and the news-comment thresholds of classifier.train."""

from __future__ import annotations

import numpy as np
import pytest

from classifier.data import CIVIL_SOURCE
from classifier.labels import ABUSE, SPAM
from classifier.train import (
    MIN_THRESHOLD_NEGATIVES,
    PREVIOUS_CONFIG,
    TrainConfig,
    source_weights,
    threshold_rows,
)


def _totals(sources: list[str], w: np.ndarray) -> dict[str, float]:
    return {s: float(w[np.asarray(sources) == s].sum()) for s in set(sources)}


def test_equal_sources_by_default() -> None:
    sources = ["a"] * 30 + ["b"] * 10
    w = source_weights(sources)
    assert w.mean() == pytest.approx(1.0)
    totals = _totals(sources, w)
    assert totals["a"] == pytest.approx(totals["b"])


def test_totals_give_a_source_its_share() -> None:
    sources = ["news"] * 10 + ["a"] * 30 + ["b"] * 60
    w = source_weights(sources, totals={"news": 4.0})
    assert w.mean() == pytest.approx(1.0)
    totals = _totals(sources, w)
    assert totals["news"] == pytest.approx(4 * totals["a"])
    assert totals["a"] == pytest.approx(totals["b"])
    # Within a source every row weighs the same (the source keeps its class balance).
    assert len(set(np.round(w[:10], 12).tolist())) == 1


def test_totals_with_classes_split_each_source_equally() -> None:
    sources = ["news"] * 10 + ["a"] * 30
    ys = [1] * 2 + [0] * 8 + [1] * 10 + [0] * 20
    w = source_weights(sources, ys, totals={"news": 3.0})
    news_pos, news_neg = w[:2].sum(), w[2:10].sum()
    a_pos, a_neg = w[10:20].sum(), w[20:].sum()
    assert news_pos == pytest.approx(news_neg)
    assert a_pos == pytest.approx(a_neg)
    assert news_pos + news_neg == pytest.approx(3 * (a_pos + a_neg))


def test_non_positive_total_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        source_weights(["a", "b"], totals={"a": 0.0})


def test_abuse_thresholds_come_from_news_rows() -> None:
    n = MIN_THRESHOLD_NEGATIVES
    sources = [CIVIL_SOURCE] * (n + 5) + ["davidson"] * 50
    ys = [0] * n + [1] * 5 + [0] * 50
    mask = threshold_rows(ABUSE, sources, ys)
    assert mask.tolist() == [s == CIVIL_SOURCE for s in sources]
    # Spam has no news source: every row.
    assert threshold_rows(SPAM, sources, ys).all()
    # Too few news negatives (a subsampled run): every row rather than a noisy cut.
    few = [CIVIL_SOURCE] * 10 + ["davidson"] * 50
    assert threshold_rows(ABUSE, few, [0] * 60).all()


def test_weighting_is_recorded_and_differs_from_previous() -> None:
    config = TrainConfig()
    described = config.describe()
    assert described["source_weight"] == config.source_weight
    assert described["balance_classes"] == config.balance_classes
    assert described["lexicon_weight"] == config.lexicon_weight
    assert PREVIOUS_CONFIG.describe() != described
    assert PREVIOUS_CONFIG.source_weight == {}
    assert PREVIOUS_CONFIG.balance_classes
