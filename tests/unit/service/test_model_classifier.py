"""The model adapter takes the pipeline's normalised texts: the same scores, one pass fewer."""

from __future__ import annotations

from pathlib import Path

import classifier
from service.adapters.sklearn_classifier import ModelClassifier
from service.domain.model import Author, Comment
from service.ports import PrenormalizedClassifier

COMMENTS = [
    Comment("c1", "herald", "BUY cheap pills at www.pills.example NOW!!!"),
    Comment("c2", "herald", "You are an  I D I O T", author=Author(url="https://x.example")),
    Comment("c3", "other", "click here " * 200),  # longer than the model reads
]


def test_scores_from_normalised_texts_are_the_scores_of_the_texts(tiny_model: Path) -> None:
    model = ModelClassifier.load(tiny_model)
    normalized = [classifier.normalize(c.text) for c in COMMENTS]

    assert isinstance(model, PrenormalizedClassifier)
    assert model.normalizer is classifier.normalize
    assert model.score_normalized(COMMENTS, normalized) == model.score(COMMENTS)
