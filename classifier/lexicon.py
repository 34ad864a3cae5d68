"""A pretrained word-level abuse scorer, re-derived into our own artifact.

The ``alt-profanity-check`` package ships a word TF-IDF vectorizer (about 15k words)
and five calibrated linear SVMs, trained on much more external data (mostly Wikipedia
talk-page comments, and also our Davidson source: see ``PRETRAINED_ON``) than this
project has.  Scored on *raw* text it transfers better across the abuse sources it was
not trained on than anything trained here, but it is easily fooled by
obfuscation (``1d10t``).  Scored on :func:`classifier.normalize.normalize`'d text it
keeps its accuracy and loses almost nothing to obfuscation.

:func:`from_profanity_check` copies its vocabulary, IDF weights, SVM weights and sigmoid
calibrations into a :class:`Lexicon` of plain NumPy arrays.  Words are keyed by the
featuriser's own 64-bit word hash, so at scoring time the lexicon needs only the word
hashes the featuriser already computed (:class:`classifier.features.WordHashes`): one
``searchsorted`` per batch, no Python work per word, and no dependency on the package
or its pickles at runtime.  :meth:`Lexicon.logit` reproduces ``predict_prob`` on
normalised text (up to 64-bit hash collisions and Unicode tokenisation corner cases;
tested to 1e-6 on real comments).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import InconsistentVersionWarning

from classifier.features import WordHashes, word_hashes

__all__ = ["PRETRAINED_ON", "Lexicon", "from_profanity_check"]

# Our abuse sources that ``alt-profanity-check``'s own training data contains.  Its README
# names two datasets: t-davidson/hate-speech-and-offensive-language (our ``davidson``)
# and Jigsaw's Wikipedia toxic comments (not one of ours).  A model that mixes in the
# lexicon has therefore seen Davidson, so ``evaluate`` trains its Davidson
# leave-one-source-out fold without the lexicon and marks the in-sample rows.
PRETRAINED_ON: frozenset[str] = frozenset({"davidson"})


@dataclass(frozen=True, slots=True)
class Lexicon:
    """TF-IDF (l2-normalised) -> k linear scorers -> k sigmoids -> mean probability.

    ``keys`` is sorted; row ``i`` of ``weights`` (``(n_words, k)``) and ``idf[i]``
    belong to the word whose hash is ``keys[i]``.  Probability of fold ``j`` is
    ``1 / (1 + exp(a[j] * d_j + b[j]))`` with ``d_j = tfidf @ weights[:, j] +
    intercepts[j]``, as in scikit-learn's sigmoid calibration.
    """

    keys: np.ndarray  # uint64, sorted, unique
    idf: np.ndarray  # float64
    weights: np.ndarray  # float64, (n_words, k)
    intercepts: np.ndarray  # (k,)
    calib_a: np.ndarray  # (k,)
    calib_b: np.ndarray  # (k,)
    source: str = ""

    def validate(self) -> None:
        n = self.keys.shape[0]
        k = self.intercepts.shape[0]
        if (
            self.keys.dtype != np.uint64
            or self.idf.shape != (n,)
            or self.weights.shape != (n, k)
            or self.calib_a.shape != (k,)
            or self.calib_b.shape != (k,)
            or k == 0
        ):
            raise ValueError("lexicon arrays have inconsistent shapes")
        if n > 1 and not np.all(self.keys[1:] > self.keys[:-1]):
            raise ValueError("lexicon keys must be sorted and unique")
        for arr in (self.idf, self.weights, self.intercepts, self.calib_a, self.calib_b):
            if not np.all(np.isfinite(arr)):
                raise ValueError("lexicon contains non-finite values")

    def probabilities(self, words: WordHashes) -> np.ndarray:
        """Mean calibrated probability per document (``predict_prob``)."""
        n_docs = words.n_docs
        decisions = np.tile(self.intercepts, (n_docs, 1))
        if words.hashes.shape[0] and self.keys.shape[0]:
            pos = np.searchsorted(self.keys, words.hashes)
            pos = np.minimum(pos, self.keys.shape[0] - 1)
            hit = self.keys[pos] == words.hashes
            if hit.any():
                idx, docs = pos[hit], words.docs[hit]
                # Distinct (doc, word) pairs and their counts.
                pair, counts = np.unique(docs * self.keys.shape[0] + idx, return_counts=True)
                d_doc = pair // self.keys.shape[0]
                d_idx = pair % self.keys.shape[0]
                tfidf = counts * self.idf[d_idx]
                norm = np.sqrt(np.bincount(d_doc, weights=tfidf * tfidf, minlength=n_docs))
                values = tfidf / norm[d_doc]
                contrib = self.weights[d_idx] * values[:, None]
                for j in range(self.intercepts.shape[0]):
                    decisions[:, j] += np.bincount(d_doc, weights=contrib[:, j], minlength=n_docs)
        z = np.clip(decisions * self.calib_a + self.calib_b, -50, 50)
        out: np.ndarray = np.mean(1.0 / (1.0 + np.exp(z)), axis=1)
        return out

    def logit(self, words: WordHashes) -> np.ndarray:
        """Log-odds of :meth:`probabilities`, clipped to +-12."""
        p = np.clip(self.probabilities(words), 6e-6, 1 - 6e-6)
        out: np.ndarray = np.log(p) - np.log1p(-p)
        return out


def from_profanity_check() -> Lexicon:
    """Copy the pretrained ``alt-profanity-check`` model into a :class:`Lexicon`.

    Needed at training time only.  The package's pickles were written by some
    scikit-learn version; if that is not the installed one, scikit-learn's
    ``InconsistentVersionWarning`` is turned into an error here (checked by a test)
    instead of silently trusting weights from another version.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        from profanity_check import profanity_check as pc  # noqa: PLC0415

    vectorizer, model = pc.vectorizer, pc.model
    vocab: dict[str, int] = vectorizer.vocabulary_
    words = sorted(vocab, key=vocab.__getitem__)
    columns = np.asarray([vocab[w] for w in words])
    folds = model.calibrated_classifiers_
    coef = np.column_stack([f.estimator.coef_[0][columns] for f in folds]).astype(np.float64)
    intercepts = np.asarray([float(f.estimator.intercept_[0]) for f in folds])
    calib_a = np.asarray([float(f.calibrators[0].a_) for f in folds])
    calib_b = np.asarray([float(f.calibrators[0].b_) for f in folds])
    idf = np.asarray(vectorizer.idf_, dtype=np.float64)[columns]
    keys = word_hashes(words)
    order = np.argsort(keys, kind="stable")
    keys, idf, coef = keys[order], idf[order], coef[order]
    if np.any(keys[1:] == keys[:-1]):
        # Two vocabulary words with one 64-bit hash: keep the first (never seen so far).
        keep = np.concatenate([[True], keys[1:] != keys[:-1]])
        keys, idf, coef = keys[keep], idf[keep], coef[keep]
    lexicon = Lexicon(
        keys=keys,
        idf=idf,
        weights=coef,
        intercepts=intercepts,
        calib_a=calib_a,
        calib_b=calib_b,
        source=f"alt-profanity-check ({len(words)} words, {len(folds)} folds)",
    )
    lexicon.validate()
    return lexicon
