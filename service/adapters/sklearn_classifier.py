"""The model adapter: the `classifier` package's artifact behind the `Classifier` port."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import classifier
from service.domain.model import Comment, Scores


class ModelClassifier:
    def __init__(self, model: classifier.Model) -> None:
        self._model = model

    @classmethod
    def load(cls, path: Path) -> ModelClassifier:
        return cls(classifier.load_model(path))

    @property
    def version(self) -> str:
        return self._model.version

    @property
    def normalizer(self) -> Callable[[str], str]:
        return classifier.normalize

    def score(self, comments: Sequence[Comment]) -> list[Scores]:
        return self._score(comments, None)

    def score_normalized(
        self, comments: Sequence[Comment], normalized: Sequence[str]
    ) -> list[Scores]:
        """`score`, with `normalized[i]` = `classifier.normalize(comments[i].text)`."""
        return self._score(comments, normalized)

    def _score(self, comments: Sequence[Comment], normalized: Sequence[str] | None) -> list[Scores]:
        rows = self._model.score_rows(
            [c.text for c in comments],
            author_urls=[c.author.url for c in comments],
            site_ids=[c.site_id for c in comments],
            normalized=normalized,
        )
        # [spam, abuse, *sub-scores]: the classifier's SUBSCORES order is the order of the
        # sub-score fields of `Scores` (a unit test holds them together)
        return [Scores(*row) for row in rows]
