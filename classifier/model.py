"""The scoring model, its on-disk artifact, and loading with integrity checks.

An artifact is a directory holding

* ``model.joblib`` -- a :class:`ModelParams` (featuriser + linear weights + sigmoid
  calibration per label), and
* ``model.json`` -- metadata: labels in order, model version, scikit-learn version,
  sha256 of the training data and of ``model.joblib``, metrics and thresholds.

:func:`load_model` checks the JSON first (format, labels, scikit-learn version, file
hash) and only then unpickles, turning scikit-learn's ``InconsistentVersionWarning`` into
a :class:`ModelLoadError` rather than silencing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from classifier.features import Featurizer
from classifier.labels import ABUSE, LABELS, SPAM, SUBSCORES
from classifier.lexicon import Lexicon

__all__ = [
    "ARTIFACT_FORMAT",
    "METADATA_FILE",
    "MODEL_FILE",
    "Model",
    "ModelLoadError",
    "ModelParams",
    "Scores",
    "SiteParams",
    "load_model",
    "write_artifact",
]

# 2: optional pretrained lexicon mixed in; 3: optional abuse sub-scores; 4: optional per-site
# adjustments
ARTIFACT_FORMAT = 4
MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"


class ModelLoadError(Exception):
    """The model artifact is missing, corrupt, or incompatible with this runtime."""


@dataclass(frozen=True, slots=True)
class Scores:
    """Calibrated probabilities in [0, 1].

    The abuse sub-scores are ``None`` for a model trained without them.
    """

    spam: float
    abuse: float
    severe_toxicity: float | None = None
    insult: float | None = None
    threat: float | None = None
    identity_attack: float | None = None
    profanity: float | None = None


@dataclass(frozen=True, slots=True)
class SiteParams:
    """One site's adjustment on top of the shared model, learnt from its moderators' labels.

    For each label with ``adapted[j]``, the site's log-odds are
    ``scale[j] * shared log-odds + x @ weights[:, j] + intercept[j]``, where ``x`` is the
    shared featuriser's row for the text; a label without an adjustment keeps the shared
    score. ``weights`` is sparse: only features seen in the site's labels are non-zero.
    """

    adapted: tuple[bool, ...]
    scale: np.ndarray
    intercept: np.ndarray
    weights: sp.csc_matrix
    labels_used: int = 0  # the site labels this adjustment was fitted on

    def validate(self, n_features: int, n_labels: int) -> None:
        if len(self.adapted) != n_labels or not any(self.adapted):
            raise ModelLoadError("a site adjustment must adapt at least one of the labels")
        for name in ("scale", "intercept"):
            arr = getattr(self, name)
            if arr.shape != (n_labels,) or not np.all(np.isfinite(arr)):
                raise ModelLoadError(f"site {name} is malformed: shape {arr.shape}")
        if not sp.issparse(self.weights) or self.weights.shape != (n_features, n_labels):
            raise ModelLoadError(f"site weights have shape {self.weights.shape}")
        if not np.all(np.isfinite(self.weights.data)):
            raise ModelLoadError("site weights contain non-finite values")


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Everything needed to score: the pickled part of an artifact.

    ``weights`` has one column per entry of ``labels``; ``intercepts``,
    ``calib_slope`` and ``calib_offset`` one entry per label.  The calibrated
    probability is ``1 / (1 + exp(slope * (x @ w + b) + offset))`` -- the same
    sigmoid that ``CalibratedClassifierCV(method="sigmoid")`` fits.
    """

    labels: tuple[str, ...]
    featurizer: Featurizer
    weights: np.ndarray
    intercepts: np.ndarray
    calib_slope: np.ndarray
    calib_offset: np.ndarray
    # The fitted scikit-learn sigmoid calibrators the two arrays above were read from
    # (kept for provenance, and so that a version mismatch is detected on load).
    calibrators: tuple[Any, ...] = ()
    # Optional pretrained lexicon (format 2).  Per label, the final log-odds are
    # ``mix_slope * (own calibrated log-odds + lexicon_weight * lexicon log-odds)
    # + mix_offset``; a label with weight 0, slope 1 and offset 0 ignores the lexicon.
    lexicon: Lexicon | None = None
    lexicon_weight: np.ndarray | None = None
    mix_slope: np.ndarray | None = None
    mix_offset: np.ndarray | None = None
    # Optional abuse sub-scores (format 3): one column per entry of SUBSCORES, each a
    # logistic regression fitted to rater fractions, so ``1 / (1 + exp(-(x @ w + b)))``
    # estimates the share of raters who would call the comment that.
    sub_weights: np.ndarray | None = None
    sub_intercepts: np.ndarray | None = None
    # Optional per-site adjustments (format 4), by site id; see SiteParams.
    sites: Mapping[str, SiteParams] = field(default_factory=dict)

    def _validate_subscores(self, n_features: int) -> None:
        if (self.sub_weights is None) != (self.sub_intercepts is None):
            raise ModelLoadError("sub-score weights and intercepts come together")
        if self.sub_weights is not None and self.sub_intercepts is not None:
            n_sub = len(SUBSCORES)
            if self.sub_weights.shape != (n_features, n_sub) or self.sub_intercepts.shape != (
                n_sub,
            ):
                raise ModelLoadError(f"sub-score weights have shape {self.sub_weights.shape}")
            if not (
                np.all(np.isfinite(self.sub_weights)) and np.all(np.isfinite(self.sub_intercepts))
            ):
                raise ModelLoadError("sub-score weights contain non-finite values")

    def _validate_sites(self, n_features: int, n_labels: int) -> None:
        for site_id, site in self.sites.items():
            if not isinstance(site_id, str) or not isinstance(site, SiteParams):
                raise ModelLoadError(f"site adjustment {site_id!r} is malformed")
            site.validate(n_features, n_labels)

    def validate(self) -> None:
        n_labels = len(self.labels)
        n_features = self.featurizer.n_features
        self._validate_subscores(n_features)
        self._validate_sites(n_features, n_labels)
        if self.weights.shape != (n_features, n_labels):
            raise ModelLoadError(
                f"weights have shape {self.weights.shape}, expected {(n_features, n_labels)}"
            )
        for name in ("intercepts", "calib_slope", "calib_offset"):
            arr = getattr(self, name)
            if arr.shape != (n_labels,) or not np.all(np.isfinite(arr)):
                raise ModelLoadError(f"{name} is malformed: shape {arr.shape}")
        if not np.all(np.isfinite(self.weights)):
            raise ModelLoadError("weights contain non-finite values")
        if len(self.calibrators) != n_labels:
            raise ModelLoadError("one fitted calibrator per label is required")
        for i, cal in enumerate(self.calibrators):
            a, b = getattr(cal, "a_", None), getattr(cal, "b_", None)
            if a != self.calib_slope[i] or b != self.calib_offset[i]:
                raise ModelLoadError(f"calibration of label {self.labels[i]!r} is inconsistent")
        mix = (self.lexicon_weight, self.mix_slope, self.mix_offset)
        if self.lexicon is None:
            if any(arr is not None for arr in mix):
                raise ModelLoadError("lexicon mixing weights without a lexicon")
            return
        try:
            self.lexicon.validate()
        except ValueError as exc:
            raise ModelLoadError(f"lexicon is malformed: {exc}") from exc
        for name, arr in zip(("lexicon_weight", "mix_slope", "mix_offset"), mix, strict=True):
            if arr is None or arr.shape != (n_labels,) or not np.all(np.isfinite(arr)):
                raise ModelLoadError(f"{name} is malformed")


class Model:
    """A loaded model.  Thread-safe for concurrent ``score`` calls (no mutation)."""

    __slots__ = (
        "_abuse_col",
        "_lex",
        "_params",
        "_sites",
        "_spam_col",
        "_sub",
        "_w_char",
        "_w_dense",
        "_w_word",
        "metadata",
        "version",
    )

    def __init__(self, params: ModelParams, metadata: Mapping[str, Any]) -> None:
        params.validate()
        if set(params.labels) != set(LABELS):
            raise ModelLoadError(f"model labels {params.labels} != expected {LABELS}")
        self._params = params
        self._spam_col = params.labels.index(SPAM)
        self._abuse_col = params.labels.index(ABUSE)
        n_word = params.featurizer.word_features
        n_char = params.featurizer.char_features
        # Label and sub-score columns side by side: one sparse product per block.
        weights = params.weights
        self._sub: np.ndarray | None = None
        if params.sub_weights is not None and params.sub_intercepts is not None:
            weights = np.hstack([weights, params.sub_weights.astype(weights.dtype)])
            self._sub = np.asarray(params.sub_intercepts, dtype=np.float64)
        self._w_word = np.ascontiguousarray(weights[:n_word])
        self._w_char = np.ascontiguousarray(weights[n_word : n_word + n_char])
        self._w_dense = weights[n_word + n_char :].astype(np.float64)
        self._lex: tuple[Lexicon, np.ndarray, np.ndarray, np.ndarray] | None = None
        if params.lexicon is not None:  # validate() checked the three arrays
            self._lex = (
                params.lexicon,
                np.asarray(params.lexicon_weight, dtype=np.float64),
                np.asarray(params.mix_slope, dtype=np.float64),
                np.asarray(params.mix_offset, dtype=np.float64),
            )
        self._sites = {
            site_id: _SiteWeights.of(site, n_word, n_char) for site_id, site in params.sites.items()
        }
        self.metadata: dict[str, Any] = dict(metadata)
        self.version: str = str(metadata.get("model_version", "unknown"))

    @property
    def params(self) -> ModelParams:
        return self._params

    @property
    def max_chars(self) -> int:
        """Only this many leading characters of a text are looked at."""
        return self._params.featurizer.max_chars

    @property
    def has_subscores(self) -> bool:
        return self._sub is not None

    @property
    def sites(self) -> frozenset[str]:
        """The sites this model has an adjustment for."""
        return frozenset(self._sites)

    def probabilities(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None = None,
        site_ids: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(texts), len(labels))``, columns in
        ``self.params.labels`` order."""
        return self._scored(texts, author_urls, site_ids)[0]

    def shared_logits(
        self, texts: Sequence[str], author_urls: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """The shared model's calibrated log-odds (one column a label) and the feature rows
        they came from (word, character and dense blocks side by side): what a site
        adjustment is fitted on."""
        logits, _, parts = self._logits(texts, author_urls)
        if parts is None:
            return logits, sp.csr_matrix((0, self._params.featurizer.n_features))
        words, chars, dense = parts
        x = sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
        return logits, x

    def _logits(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None = None,
        normalized: Sequence[str] | None = None,
    ) -> tuple[
        np.ndarray, np.ndarray | None, tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray] | None
    ]:
        """Shared calibrated log-odds per label, sub-scores (when the model has them) and the
        feature blocks, one row a text."""
        p = self._params
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, len(p.labels))), None, None
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"texts must be strings, got {type(t).__name__}")
        words, chars, dense, hashes = p.featurizer.transform_parts(texts, author_urls, normalized)
        # Same as transform(...) @ weights, without assembling the stacked matrix.
        z_all = (
            np.asarray(words @ self._w_word, dtype=np.float64)
            + np.asarray(chars @ self._w_char, dtype=np.float64)
            + dense @ self._w_dense
        )
        n_labels = len(p.labels)
        z = z_all[:, :n_labels] + p.intercepts
        logit = -(z * p.calib_slope + p.calib_offset)
        if self._lex is not None:
            lexicon, weight, slope, offset = self._lex
            logit = (logit + lexicon.logit(hashes)[:, None] * weight) * slope + offset
        sub: np.ndarray | None = None
        if self._sub is not None:
            sub = _sigmoid(z_all[:, n_labels:] + self._sub)
        return logit, sub, (words, chars, dense)

    def _scored(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None,
        site_ids: Sequence[str | None] | None,
        normalized: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (each site's rows with its adjustment) and shared sub-scores."""
        logits, sub, parts = self._logits(texts, author_urls, normalized)
        if parts is not None:
            logits = self._adjust(logits, parts, site_ids)
        return _sigmoid(logits), sub

    def _adjust(
        self,
        logits: np.ndarray,
        parts: tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray],
        site_ids: Sequence[str | None] | None,
    ) -> np.ndarray:
        """Each site's adjustment applied to its own rows; every other row is untouched."""
        if not self._sites or site_ids is None:
            return logits
        if len(site_ids) != len(logits):
            raise ValueError("site_ids must be as long as texts")
        rows_of: dict[str, list[int]] = {}
        for i, site_id in enumerate(site_ids):
            if site_id is not None and site_id in self._sites:
                rows_of.setdefault(site_id, []).append(i)
        if not rows_of:
            return logits
        out = logits.copy()
        words, chars, dense = parts
        for site_id, rows in rows_of.items():
            idx = np.asarray(rows)
            out[idx] = self._sites[site_id].apply(logits[idx], words[idx], chars[idx], dense[idx])
        return out

    def score(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None = None,
        site_ids: Sequence[str | None] | None = None,
        normalized: Sequence[str] | None = None,
    ) -> list[Scores]:
        """Score a batch; result ``i`` belongs to ``texts[i]``.

        ``site_ids[i]`` (optional) names the site a comment came from: a site with its
        own adjustment in the model is scored with it, any other with the shared model.
        Sub-scores always come from the shared model. ``normalized[i]`` (optional) is
        ``normalize(texts[i])`` when the caller has it already: the same scores, one
        normalisation fewer.
        """
        return [Scores(*row) for row in self.score_rows(texts, author_urls, site_ids, normalized)]

    def score_rows(
        self,
        texts: Sequence[str],
        author_urls: Sequence[str | None] | None = None,
        site_ids: Sequence[str | None] | None = None,
        normalized: Sequence[str] | None = None,
    ) -> list[list[float]]:
        """:meth:`score` as plain rows, ``[spam, abuse, *sub-scores]`` (the sub-scores in
        ``SUBSCORES`` order, only when the model has them), for callers that build their
        own score objects."""
        probs, sub = self._scored(texts, author_urls, site_ids, normalized)
        columns = [probs[:, self._spam_col], probs[:, self._abuse_col]]
        if sub is not None:
            columns.append(sub)
        rows: list[list[float]] = np.column_stack(columns).tolist()
        return rows


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(np.clip(-logit, -50, 50)))
    return out


@dataclass(frozen=True, slots=True)
class _SiteWeights:
    """A site's adjustment split into the featuriser's blocks, ready to score."""

    adapted: np.ndarray  # bool per label
    scale: np.ndarray
    intercept: np.ndarray
    word: sp.csr_matrix
    char: sp.csr_matrix
    dense: np.ndarray

    @classmethod
    def of(cls, site: SiteParams, n_word: int, n_char: int) -> _SiteWeights:
        w = sp.csr_matrix(site.weights, dtype=np.float64)
        return cls(
            np.asarray(site.adapted, dtype=bool),
            np.asarray(site.scale, dtype=np.float64),
            np.asarray(site.intercept, dtype=np.float64),
            w[:n_word],
            w[n_word : n_word + n_char],
            w[n_word + n_char :].toarray(),
        )

    def apply(
        self, logits: np.ndarray, words: sp.csr_matrix, chars: sp.csr_matrix, dense: np.ndarray
    ) -> np.ndarray:
        own = (
            (words @ self.word).toarray()
            + (chars @ self.char).toarray()
            + dense.astype(np.float64) @ self.dense
        )
        adjusted = logits * self.scale + own + self.intercept
        out: np.ndarray = np.where(self.adapted, adjusted, logits)
        return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load and verify the artifact directory at ``path``.

    Raises :class:`ModelLoadError` with a human-readable reason for a missing
    directory, unreadable or inconsistent ``model.json``, labels other than
    ``("spam", "abuse")``, an artifact written by another scikit-learn version, a
    ``model.joblib`` whose hash does not match, or one that fails to unpickle.
    """
    root = Path(path)
    metadata = _read_metadata(root)
    params = _read_params(root / MODEL_FILE, metadata)
    return Model(params, metadata)


def _read_metadata(root: Path) -> dict[str, Any]:
    meta_path = root / METADATA_FILE
    if not root.is_dir():
        raise ModelLoadError(
            f"model directory {root} does not exist (run `python -m classifier train`)"
        )
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{meta_path} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{meta_path} is unreadable: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{meta_path} must hold a JSON object")
    if metadata.get("format") != ARTIFACT_FORMAT:
        raise ModelLoadError(
            f"{meta_path}: artifact format {metadata.get('format')!r}, expected "
            f"{ARTIFACT_FORMAT}: this model was written by an older version of the classifier; "
            "retrain it with `python -m classifier train`"
        )
    labels = metadata.get("labels")
    if labels != list(LABELS):
        raise ModelLoadError(f"{meta_path}: labels {labels!r}, expected {list(LABELS)!r}")
    trained_with = metadata.get("sklearn_version")
    if trained_with != sklearn.__version__:
        raise ModelLoadError(
            f"model at {root} was trained with scikit-learn {trained_with}, but "
            f"{sklearn.__version__} is installed; retrain it with "
            "`python -m classifier train` (pickled estimators are not portable across versions)"
        )
    return metadata


def _read_params(model_path: Path, metadata: Mapping[str, Any]) -> ModelParams:
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path} is missing")
    expected_sha = metadata.get("artifact_sha256")
    actual_sha = _sha256_file(model_path)
    if actual_sha != expected_sha:
        raise ModelLoadError(
            f"{model_path} is corrupt or does not belong to this model.json "
            f"(sha256 {actual_sha[:12]}..., expected {str(expected_sha)[:12]}...)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            params = joblib.load(model_path)
    except InconsistentVersionWarning as exc:
        raise ModelLoadError(f"{model_path}: {exc}") from exc
    except Exception as exc:
        raise ModelLoadError(f"{model_path} could not be unpickled: {exc!r}") from exc
    if not isinstance(params, ModelParams):
        raise ModelLoadError(f"{model_path} holds {type(params).__name__}, not ModelParams")
    if list(params.labels) != list(LABELS):
        raise ModelLoadError(f"{model_path}: labels {params.labels!r} do not match model.json")
    return params


def write_artifact(out_dir: Path, params: ModelParams, metadata: Mapping[str, Any]) -> Path:
    """Write an artifact to ``out_dir`` atomically.

    The files are written into a fresh temporary directory next to ``out_dir`` and
    that directory is renamed into place; an existing artifact is first renamed out
    of the way and then deleted.  A reader therefore sees either the old complete
    artifact, the new complete one, or (for the instant between the two renames) no
    directory at all -- never a partial one.
    """
    params.validate()
    out_dir = Path(out_dir).absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        model_path = tmp / MODEL_FILE
        joblib.dump(params, model_path, compress=3)
        full_meta = {
            "format": ARTIFACT_FORMAT,
            "labels": list(params.labels),
            **metadata,
            "sklearn_version": sklearn.__version__,
            "artifact_sha256": _sha256_file(model_path),
        }
        (tmp / METADATA_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=False) + "\n")
        for f in (model_path, tmp / METADATA_FILE):
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        old: Path | None = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            # a promoted model (see service/adapters/model_registry.py): the link goes, the
            # version it pointed at stays
            if old.is_symlink():
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
