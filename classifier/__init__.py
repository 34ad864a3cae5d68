"""Spam and abuse scoring for comments: training, evaluation, loading and scoring.

Public interface::

    from classifier import load_model, Scores, ModelLoadError, normalize

    model = load_model(".state/model")
    model.score(["some comment"], author_urls=[None])  # -> [Scores(spam=..., abuse=...)]
"""

from classifier.labels import ABUSE, LABELS, SPAM
from classifier.model import Model, ModelLoadError, Scores, load_model
from classifier.normalize import normalize

__all__ = [
    "ABUSE",
    "LABELS",
    "SPAM",
    "Model",
    "ModelLoadError",
    "Scores",
    "load_model",
    "normalize",
]
