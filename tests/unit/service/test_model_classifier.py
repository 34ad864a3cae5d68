"""The model adapter takes the pipeline's normalised texts: the same scores, one pass fewer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import classifier
from classifier.labels import SUBSCORES
from service.adapters.sklearn_classifier import ModelClassifier
from service.domain.model import Author, Comment, SubScore
from service.usecases.ports import PrenormalizedClassifier

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


def test_the_service_scores_are_the_models_field_by_field(tiny_model: Path) -> None:
    model = classifier.load_model(tiny_model)

    scored = ModelClassifier(model).score(COMMENTS)

    assert tuple(SubScore) == SUBSCORES  # the rows are mapped by position
    expected = model.score([c.text for c in COMMENTS], [c.author.url for c in COMMENTS])
    assert [dataclasses.asdict(s) for s in scored] == [dataclasses.asdict(s) for s in expected]
