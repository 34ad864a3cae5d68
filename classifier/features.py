"""Turning comments into a sparse feature matrix, fast.

Three blocks, concatenated column-wise:

* word uni- and bi-grams of the normalised text, hashed with vectorised NumPy
  (polynomial hashes from prefix sums: no per-word Python work);
* character 3-5-grams of the normalised text, hashed with vectorised NumPy over the
  whole batch at once (no per-n-gram Python work);
* a few dense "shape" features of the raw text: length, share of capitals, digits,
  non-ASCII and punctuation, runs of repeated characters, number of links, e-mail
  and phone tokens, and whether the author supplied a profile URL.

The featuriser is stateless (hashing, no vocabulary), so it never needs fitting and
the same object is used for training and scoring.  Every text is cut to
``max_chars`` characters before any work, so one huge comment costs no more than a
normal one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from classifier.normalize import EMAIL_TOKEN, PHONE_TOKEN, URL_TOKEN, normalize

__all__ = ["DENSE_FEATURES", "Featurizer", "WordHashes", "word_hashes"]

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
_REPEAT_HINT_RE = re.compile(r"(.)\1\1", re.DOTALL)
_PUNCT_BYTES = bytes(
    c for c in range(128) if not chr(c).isalnum() and not chr(c).isspace() and c != ord("_")
)
_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_DIGITS = b"0123456789"

_M64 = 0xFFFFFFFFFFFFFFFF
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)
_SHIFT = np.uint64(31)
_SHIFT2 = np.uint64(29)
# Polynomial hashing of whole words: base P (odd) and its inverse modulo 2**64.
_P = 0x100000001B3
_Q = pow(_P, -1, 1 << 64)
_UNIGRAM_SEED = np.uint64(0x2545F4914F6CDD1D)


@functools.cache
def _word_char_table() -> np.ndarray:
    """For every code point of the Basic Multilingual Plane: is it a word character?"""
    return np.fromiter(
        ((chr(cp).isalnum() or cp == 0x5F) for cp in range(0x10000)), dtype=bool, count=0x10000
    )


def _avalanche(h: np.ndarray) -> np.ndarray:
    h ^= h >> _SHIFT
    h *= _MIX2
    h ^= h >> _SHIFT2
    return h


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch of normalised texts as one array of code points.

    Texts are padded with a space and separated by NUL (which normalize removes).
    """

    codes: np.ndarray  # uint64 code points
    doc_of: np.ndarray  # document index of every position
    is_sep: np.ndarray
    n_docs: int

    @classmethod
    def encode(cls, texts: Sequence[str]) -> _Batch:
        joined = "\x00 " + " \x00 ".join(texts) + " \x00"
        raw = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        is_sep = raw == 0
        doc_of = np.cumsum(is_sep) - 1
        return cls(raw.astype(np.uint64), doc_of, is_sep, len(texts))


def _csr(
    rows: np.ndarray, cols: np.ndarray, n_docs: int, n_features: int, weight: float
) -> sp.csr_matrix:
    """Rows of hashed counts, each scaled to unit L2 norm as if its entries were distinct.

    Repeated columns in a row stay separate entries: sparse products sum them, so no
    (costly) sorting or de-duplication is needed.
    """
    order = np.argsort(rows, kind="stable")  # rows arrive as a few sorted runs
    counts = np.bincount(rows, minlength=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = (weight / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    return sp.csr_matrix(
        (np.repeat(scale, counts), cols[order], indptr), shape=(n_docs, n_features)
    )


def _char_ngrams(batch: _Batch, ngram_range: tuple[int, int], n_features: int) -> sp.csr_matrix:
    """Hashed character n-grams (including the padding spaces) of every text."""
    codes, doc_of, is_sep = batch.codes, batch.doc_of, batch.is_sep
    length = codes.shape[0]
    mask = np.uint64(n_features - 1)
    rows_parts: list[np.ndarray] = []
    cols_parts: list[np.ndarray] = []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        m = length - n + 1
        if m <= 0:
            continue
        h = np.full(m, np.uint64((n * 0xBF58476D1CE4E5B9) & _M64), dtype=np.uint64)
        for k in range(n):
            h ^= codes[k : k + m]
            h *= _MIX1
        h ^= h >> _SHIFT
        valid = (doc_of[n - 1 :] == doc_of[:m]) & ~is_sep[:m]  # no separator inside
        rows_parts.append(doc_of[:m][valid])
        cols_parts.append((h[valid] & mask).astype(np.int64))
    return _csr(
        np.concatenate(rows_parts), np.concatenate(cols_parts), batch.n_docs, n_features, 1.0
    )


def _word_ngrams(batch: _Batch, n_features: int) -> sp.csr_matrix:
    """Hashed word unigrams and bigrams; a word is a maximal run of \\w characters."""
    return _word_ngrams_and_hashes(batch, n_features)[0]


def _word_ngrams_and_hashes(
    batch: _Batch, n_features: int
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """As :func:`_word_ngrams`, plus every word's full 64-bit hash and its document."""
    codes = batch.codes
    length = codes.shape[0]
    table = _word_char_table()
    is_word = np.zeros(length, dtype=bool)
    bmp = codes < 0x10000
    is_word[bmp] = table[codes[bmp].astype(np.int64)]
    edge = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    if starts.size == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return (
            sp.csr_matrix((batch.n_docs, n_features), dtype=np.float32),
            empty,
            empty.astype(np.int64),
        )
    # Prefix sums of c[k] * Q**k give every word's hash sum(c[s+i] * Q**i) in O(1).
    q_pow = np.empty(length + 1, dtype=np.uint64)
    q_pow[0] = 1
    np.cumprod(np.full(length, np.uint64(_Q)), out=q_pow[1:])
    p_pow_start = _pow_at(np.uint64(_P), starts)
    prefix = np.zeros(length + 1, dtype=np.uint64)
    np.cumsum(codes * q_pow[:length], out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * p_pow_start
    h += (ends - starts).astype(np.uint64) * _MIX3
    uni = _avalanche(h ^ _UNIGRAM_SEED)

    doc = batch.doc_of[starts]
    same = doc[:-1] == doc[1:]
    bi = _avalanche(h[:-1] * _MIX1 + h[1:])[same]
    mask = np.uint64(n_features - 1)
    rows = np.concatenate([doc, doc[:-1][same]])
    cols = (np.concatenate([uni, bi]) & mask).astype(np.int64)
    return _csr(rows, cols, batch.n_docs, n_features, 1.0), uni, doc


def _pow_at(base: np.uint64, exponents: np.ndarray) -> np.ndarray:
    """base ** e (mod 2**64) for each e, by square-and-multiply over the bits of e."""
    result = np.ones(exponents.shape[0], dtype=np.uint64)
    e = exponents.astype(np.int64)
    sq = base
    while True:
        odd = (e & 1).astype(bool)
        result[odd] *= sq
        e >>= 1
        if not e.any():
            return result
        sq = np.uint64((int(sq) * int(sq)) & _M64)


def _shape_features(raw: str, norm: str, has_author_url: bool) -> list[float]:
    n = len(raw)
    if n == 0:
        return [0.0] * (len(DENSE_FEATURES) - 1) + [float(has_author_url)]
    if raw.isascii():
        b = raw.encode()
        upper = n - len(b.translate(None, _UPPER))
        digits = n - len(b.translate(None, _DIGITS))
        non_ascii = 0
        punct = n - len(b.translate(None, _PUNCT_BYTES))
    else:
        upper = sum(map(str.isupper, raw))
        digits = sum(map(str.isdigit, raw))
        non_ascii = n - len(raw.encode("ascii", "ignore"))
        punct = len(_PUNCT_RE.findall(raw))
    letters_guess = max(n - raw.count(" "), 1)
    return [
        min(np.log1p(n) / 8.0, 1.5),
        upper / letters_guess,
        digits / letters_guess,
        non_ascii / n,
        punct / n,
        min(raw.count("!") / 5.0, 1.0),
        min(len(_REPEAT_RUN_RE.findall(raw)) / 3.0, 1.0) if _REPEAT_HINT_RE.search(raw) else 0.0,
        min(norm.count(URL_TOKEN) / 2.0, 1.0),
        float(EMAIL_TOKEN in norm),
        float(PHONE_TOKEN in norm),
        float(has_author_url),
    ]


@dataclass(frozen=True, slots=True)
class WordHashes:
    """The full 64-bit hash of every word of a batch of normalised texts, in order,
    and the index of the text each word belongs to."""

    hashes: np.ndarray  # uint64
    docs: np.ndarray  # int64, non-decreasing
    n_docs: int


def word_hashes(words: Sequence[str]) -> np.ndarray:
    """The 64-bit hash :class:`Featurizer` gives each of ``words`` (one word each)."""
    _, hashes, docs = _word_ngrams_and_hashes(_Batch.encode(list(words)), 2)
    if docs.shape[0] != len(words) or np.any(docs != np.arange(len(words))):
        raise ValueError("every entry must be exactly one word (a run of \\w characters)")
    return hashes


@dataclass(frozen=True, slots=True)
class Featurizer:
    """Stateless, picklable text -> sparse matrix transform (see module docstring)."""

    max_chars: int = 1000
    word_features: int = 2**18
    char_features: int = 2**20
    char_ngrams: tuple[int, int] = (3, 5)
    char_weight: float = 1.0
    dense_weight: float = 1.0

    @property
    def n_features(self) -> int:
        return self.word_features + self.char_features + len(DENSE_FEATURES)

    def transform_blocks(
        self, texts: Sequence[str], author_urls: Sequence[str | None] | None = None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """The word, character and dense blocks, in the column order of :meth:`transform`."""
        words, chars, dense, _ = self.transform_parts(texts, author_urls)
        return words, chars, dense

    def transform_parts(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None = None,
        normalized: Sequence[str] | None = None,
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, WordHashes]:
        """:meth:`transform_blocks` plus the 64-bit hash of every word (for lexicons).

        ``normalized[i]`` (optional) is ``normalize(texts[i])``, already computed by the
        caller: it is used for every text that fits in ``max_chars`` (a longer one is cut
        before it is normalised, as without it), so a text is not normalised twice."""
        if author_urls is not None and len(author_urls) != len(texts):
            raise ValueError("author_urls must be as long as texts")
        if normalized is not None and len(normalized) != len(texts):
            raise ValueError("normalized must be as long as texts")
        cap = self.max_chars
        raw = [t[:cap] for t in texts]
        if normalized is None:
            norm = [normalize(t)[:cap] for t in raw]
        else:
            norm = [
                n[:cap] if len(t) <= cap else normalize(r)[:cap]
                for t, r, n in zip(texts, raw, normalized, strict=True)
            ]
        batch = _Batch.encode(norm)
        words, all_hashes, word_docs = _word_ngrams_and_hashes(batch, self.word_features)
        chars = _char_ngrams(batch, self.char_ngrams, self.char_features)
        if self.char_weight != 1.0:
            chars.data *= self.char_weight
        urls = author_urls if author_urls is not None else [None] * len(texts)
        dense = np.asarray(
            [_shape_features(r, n, bool(u)) for r, n, u in zip(raw, norm, urls, strict=True)],
            dtype=np.float32,
        ).reshape(len(texts), len(DENSE_FEATURES))
        if self.dense_weight != 1.0:
            dense *= self.dense_weight
        return words, chars, dense, WordHashes(all_hashes, word_docs, len(texts))

    def transform(
        self, texts: Sequence[str], author_urls: Sequence[str | None] | None = None
    ) -> sp.csr_matrix:
        """One sparse row per text: word block, then character block, then dense block."""
        words, chars, dense = self.transform_blocks(texts, author_urls)
        return sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
