"""Turning comments into a sparse feature matrix, fast.

Three blocks, concatenated column-wise:

* word uni- and bi-grams of the normalised text (scikit-learn's murmur-hashing
  vectoriser, binary, L2-normalised);
* character 2-5-grams of the normalised text, hashed with vectorised NumPy over the
  whole batch at once (no per-n-gram Python work), sub-linear TF, L2-normalised;
* a few dense "shape" features of the raw text: length, share of capitals, digits,
  non-ASCII and punctuation, runs of repeated characters, number of links, e-mail
  and phone tokens, and whether the author supplied a profile URL.

The featuriser is stateless (hashing, no vocabulary), so it never needs fitting and
the same object is used for training and scoring.  Every text is cut to
``max_chars`` characters before any work, so one huge comment costs no more than a
normal one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize as l2_normalize

from classifier.normalize import EMAIL_TOKEN, PHONE_TOKEN, URL_TOKEN, normalize

__all__ = ["DENSE_FEATURES", "Featurizer"]

DENSE_FEATURES = (
    "log_length",
    "upper_share",
    "digit_share",
    "non_ascii_share",
    "punct_share",
    "exclaim_share",
    "repeat_runs",
    "n_urls",
    "has_email",
    "has_phone",
    "author_url",
)

_REPEAT_RUN_RE = re.compile(r"(.)\1{2,}", re.DOTALL)
_PUNCT_RE = re.compile(r"[^\w\s]")
_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_DIGITS = b"0123456789"

_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(31)


def _char_ngram_counts(
    texts: Sequence[str], ngram_range: tuple[int, int], n_features: int
) -> sp.csr_matrix:
    """Hashed character n-gram counts for all texts, as one vectorised pass."""
    n_docs = len(texts)
    if n_docs == 0:
        return sp.csr_matrix((0, n_features), dtype=np.float32)
    # Documents are padded with spaces and separated by NUL (removed by normalize).
    joined = "\x00 " + " \x00 ".join(texts) + " \x00"
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(
        np.uint64
    )
    is_sep = codes == 0
    doc_of = np.cumsum(is_sep) - 1  # document index of each position
    length = codes.shape[0]
    mask = np.uint64(n_features - 1)
    rows_parts: list[np.ndarray] = []
    cols_parts: list[np.ndarray] = []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        m = length - n + 1
        if m <= 0:
            continue
        h = np.full(m, np.uint64((n * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        for k in range(n):
            h ^= codes[k : k + m]
            h *= _MIX1
        h ^= h >> _SHIFT
        # A window is valid if it contains no separator.
        valid = (doc_of[n - 1 :] == doc_of[:m]) & ~is_sep[:m]
        rows_parts.append(doc_of[:m][valid])
        cols_parts.append((h[valid] & mask).astype(np.int64))
    rows = np.concatenate(rows_parts)
    cols = np.concatenate(cols_parts)
    data = np.ones(rows.shape[0], dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_docs, n_features), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def _shape_features(raw: str, norm: str, has_author_url: bool) -> list[float]:
    n = len(raw)
    if n == 0:
        return [0.0] * (len(DENSE_FEATURES) - 1) + [float(has_author_url)]
    if raw.isascii():
        b = raw.encode()
        upper = n - len(b.translate(None, _UPPER))
        digits = n - len(b.translate(None, _DIGITS))
        non_ascii = 0
    else:
        upper = sum(map(str.isupper, raw))
        digits = sum(map(str.isdigit, raw))
        non_ascii = n - len(raw.encode("ascii", "ignore"))
    letters_guess = max(n - raw.count(" "), 1)
    return [
        min(np.log1p(n) / 8.0, 1.5),
        upper / letters_guess,
        digits / letters_guess,
        non_ascii / n,
        len(_PUNCT_RE.findall(raw)) / n,
        min(raw.count("!") / 5.0, 1.0),
        min(len(_REPEAT_RUN_RE.findall(raw)) / 3.0, 1.0),
        min(norm.count(URL_TOKEN) / 2.0, 1.0),
        float(EMAIL_TOKEN in norm),
        float(PHONE_TOKEN in norm),
        float(has_author_url),
    ]


@dataclass(frozen=True, slots=True)
class Featurizer:
    """Stateless, picklable text -> sparse matrix transform (see module docstring)."""

    max_chars: int = 1000
    word_features: int = 2**18
    char_features: int = 2**20
    char_ngrams: tuple[int, int] = (2, 5)
    char_weight: float = 1.0
    dense_weight: float = 1.0
    _word: HashingVectorizer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        word = HashingVectorizer(
            n_features=self.word_features,
            analyzer="word",
            token_pattern=r"\w+",  # noqa: S106 - a regex, not a password
            ngram_range=(1, 2),
            lowercase=False,
            alternate_sign=False,
            binary=True,
            norm="l2",
            dtype=np.float32,
        )
        object.__setattr__(self, "_word", word)

    @property
    def n_features(self) -> int:
        return self.word_features + self.char_features + len(DENSE_FEATURES)

    def normalized(self, texts: Sequence[str]) -> list[str]:
        cap = self.max_chars
        return [normalize(t[:cap])[:cap] for t in texts]

    def transform(
        self, texts: Sequence[str], author_urls: Sequence[str | None] | None = None
    ) -> sp.csr_matrix:
        if author_urls is not None and len(author_urls) != len(texts):
            raise ValueError("author_urls must be as long as texts")
        cap = self.max_chars
        raw = [t[:cap] for t in texts]
        norm = [normalize(t)[:cap] for t in raw]
        words = self._word.transform(norm)
        chars = _char_ngram_counts(norm, self.char_ngrams, self.char_features)
        np.log1p(chars.data, out=chars.data)
        chars = l2_normalize(chars, copy=False)
        if self.char_weight != 1.0:
            chars.data *= self.char_weight
        urls = author_urls if author_urls is not None else [None] * len(texts)
        dense = np.asarray(
            [_shape_features(r, n, bool(u)) for r, n, u in zip(raw, norm, urls, strict=True)],
            dtype=np.float32,
        ).reshape(len(texts), len(DENSE_FEATURES))
        if self.dense_weight != 1.0:
            dense *= self.dense_weight
        return sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
