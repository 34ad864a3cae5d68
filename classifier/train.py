"""Training: ``python -m classifier train``.

One logistic regression per label over the shared hashed features, each trained only
on the sources labelled for it, with every source given the same total weight.  A
calibration split (15 % of each source's training rows) is held back; the frozen
regression is calibrated on it with a sigmoid (``CalibratedClassifierCV`` over a
``FrozenEstimator``), and the suggested thresholds come from it too.  Metrics in
``model.json`` are computed on the test splits, which training never sees.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from classifier.data import (
    ABUSE_SOURCES,
    CIVIL_SOURCE,
    DEFAULT_DATA_DIR,
    DataError,
    Example,
    OffensiveMapping,
    data_fingerprint,
    load_examples,
)
from classifier.features import Featurizer
from classifier.labels import ABUSE, LABELS, SPAM, SUBSCORES
from classifier.lexicon import from_profanity_check
from classifier.metrics import binary_metrics, threshold_at_fpr
from classifier.model import Model, ModelParams, write_artifact
from classifier.sites import (
    HeadOutcome,
    SiteRule,
    adapt,
    fit_sites,
    read_site_labels,
    site_summary,
    split_held_back,
)

__all__ = [
    "DEFAULT_MODEL_ENV",
    "PREVIOUS_CONFIG",
    "Head",
    "TrainConfig",
    "default_model_dir",
    "fit_head",
    "main",
    "train_params",
]

DEFAULT_MODEL_ENV = "MODERATION_MODEL_PATH"
MODEL_FAMILY = "lr-hash"
CALIBRATION_FRACTION = 0.15
# The modules that decide how a text becomes scores: a change to any of them (a new
# normalisation step, say) gives models trained on the same data a new version.
SCORING_MODULES = (
    "data.py",
    "features.py",
    "labels.py",
    "lexicon.py",
    "model.py",
    "normalize.py",
    "sites.py",
    "train.py",
)
# False-positive rates on the calibration split that the suggested thresholds aim for.
REVIEW_FPR = 0.05
BLOCK_FPR = 0.01


def code_fingerprint(package_dir: Path | None = None) -> str:
    """sha256 of the :data:`SCORING_MODULES` source files (of this package by default)."""
    root = Path(__file__).resolve().parent if package_dir is None else package_dir
    digest = hashlib.sha256()
    for name in SCORING_MODULES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def model_version(data_sha256: str, code_sha256: str, seed: int, max_per_source: int | None) -> str:
    """``lr-hash-<data>-c<code>-s<seed>[-n<rows per source>]``."""
    version = f"{MODEL_FAMILY}-{data_sha256[:10]}-c{code_sha256[:6]}-s{seed}"
    if max_per_source is not None:
        version += f"-n{max_per_source}"
    return version


def default_model_dir() -> Path:
    env = os.environ.get(DEFAULT_MODEL_ENV)
    return Path(env) if env else Path(".state") / "model"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters, chosen by leave-one-source-out evaluation (see README)."""

    c: dict[str, float] = field(default_factory=lambda: {SPAM: 4.0, ABUSE: 1.0})
    # Weight of the pretrained lexicon's log-odds next to the model's own calibrated
    # log-odds (1 = equal weight); 0 = no lexicon.  See README for how it was chosen.
    lexicon_weight: dict[str, float] = field(default_factory=lambda: {SPAM: 0.0, ABUSE: 0.3})
    offensive: OffensiveMapping = OffensiveMapping.DROP
    featurizer: Featurizer = field(default_factory=Featurizer)
    max_iter: int = 300
    # Total weight of each source relative to the others (1 for a source not listed), in
    # fitting and calibration: the news-comment source, the product's own traffic, counts
    # more.  Chosen by in-domain and leave-one-source-out ROC-AUC (see README).
    source_weight: dict[str, float] = field(default_factory=lambda: {CIVIL_SOURCE: 5.0})
    # True: every (source, class) pair weighs the same in fitting; False: each source
    # keeps its own class balance (calibration always keeps it).
    balance_classes: bool = False

    def describe(self) -> dict[str, Any]:
        """The hyper-parameters as recorded in ``model.json``."""
        return {
            "C": self.c,
            "lexicon_weight": self.lexicon_weight,
            "davidson_offensive": self.offensive.value,
            "max_chars": self.featurizer.max_chars,
            "char_ngrams": list(self.featurizer.char_ngrams),
            "source_weight": self.source_weight,
            "balance_classes": self.balance_classes,
        }


# The model shipped before news-comment weighting: every source the same total weight,
# every (source, class) pair the same weight, the lexicon at weight 1.  ``evaluate``
# compares against it.
PREVIOUS_CONFIG = TrainConfig(
    lexicon_weight={SPAM: 0.0, ABUSE: 1.0}, source_weight={}, balance_classes=True
)


@dataclass(frozen=True, slots=True)
class Head:
    """A fitted, calibrated linear scorer for one label."""

    coef: np.ndarray
    intercept: float
    calib_slope: float
    calib_offset: float
    calibrator: Any = None  # the fitted scikit-learn sigmoid calibrator
    # Mixing with a lexicon's log-odds (see ModelParams); weight 0 means no lexicon.
    lexicon_weight: float = 0.0
    mix_slope: float = 1.0
    mix_offset: float = 0.0

    def probabilities(self, x: sp.csr_matrix, lex_logit: np.ndarray | None = None) -> np.ndarray:
        z = np.asarray(x @ self.coef, dtype=np.float64) + self.intercept
        neg_logit = z * self.calib_slope + self.calib_offset
        if self.lexicon_weight:
            if lex_logit is None:
                raise ValueError("this head mixes in a lexicon: lex_logit is required")
            mixed = -neg_logit + self.lexicon_weight * lex_logit
            neg_logit = -(mixed * self.mix_slope + self.mix_offset)
        out: np.ndarray = 1.0 / (1.0 + np.exp(np.clip(neg_logit, -50, 50)))
        return out


def source_weights(
    sources: Sequence[str],
    ys: Sequence[int] | None = None,
    totals: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Weights giving each source the same total weight, mean weight 1.

    With ``totals``, source ``s`` gets a total weight proportional to ``totals[s]``
    (1 where it is not listed) instead.  With ``ys``, that total is split equally
    between the source's classes, so that nothing identifying a source (style, topic,
    length) can predict the label.
    """
    totals = totals or {}
    keys: list[tuple[str, int]] = (
        [(s, 0) for s in sources] if ys is None else list(zip(sources, ys, strict=True))
    )
    counts = Counter(keys)
    classes = Counter(s for s, _ in counts)
    share = {s: float(totals.get(s, 1.0)) for s in classes}
    if any(v <= 0 for v in share.values()):
        raise ValueError("source weights must be positive")
    norm = sum(share.values())
    total = len(keys)
    return np.asarray(
        [total * share[k[0]] / (norm * classes[k[0]] * counts[k]) for k in keys],
        dtype=np.float64,
    )


def calibration_mask(sources: Sequence[str], ys: Sequence[int], seed: int) -> np.ndarray:
    """Stratified (source x class) random 15 % of rows for calibration."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(sources, ys, strict=True)):
        groups[key].append(i)
    mask = np.zeros(len(sources), dtype=bool)
    for key in sorted(groups):
        idx = rng.permutation(np.asarray(groups[key]))
        k = round(len(idx) * CALIBRATION_FRACTION)
        mask[idx[:k]] = True
    return mask


def fit_head(
    x: sp.csr_matrix,
    y: np.ndarray,
    sources: Sequence[str],
    *,
    c: float,
    seed: int,
    max_iter: int = 300,
    lex_logit: np.ndarray | None = None,
    lexicon_weight: float = 0.0,
    source_weight: Mapping[str, float] | None = None,
    balance_classes: bool = True,
) -> tuple[Head, np.ndarray]:
    """Fit LR on most rows, calibrate on the rest.

    ``source_weight`` and ``balance_classes`` are :class:`TrainConfig`'s (the defaults
    here are :data:`PREVIOUS_CONFIG`'s: equal sources, balanced classes).

    With ``lexicon_weight`` (and the lexicon's log-odds ``lex_logit`` for every row),
    the calibrated log-odds plus ``lexicon_weight`` times the lexicon's are
    re-calibrated with a second sigmoid (Platt) on the same calibration rows.

    Returns the head and the calibration rows' probabilities, labels and weights (for
    thresholds), in the order of ``calibration_mask(sources, y, seed)``'s rows.
    """
    cal = calibration_mask(sources, y.tolist(), seed)
    if cal.all() or not cal.any():
        raise ValueError("not enough rows to split off a calibration set")
    fit_idx = np.flatnonzero(~cal)
    cal_idx = np.flatnonzero(cal)
    y_fit, y_cal = y[fit_idx], y[cal_idx]
    if len(set(y_fit.tolist())) < 2 or len(set(y_cal.tolist())) < 2:
        raise ValueError("training and calibration rows must contain both classes")
    fit_sources = [sources[int(i)] for i in fit_idx]
    cal_sources = [sources[int(i)] for i in cal_idx]
    lr = LogisticRegression(C=c, max_iter=max_iter, solver="liblinear", random_state=seed)
    fit_ys = y_fit.tolist() if balance_classes else None
    lr.fit(x[fit_idx], y_fit, sample_weight=source_weights(fit_sources, fit_ys, source_weight))
    # Calibrate to each source's own class balance, each source with its total weight.
    w_cal = source_weights(cal_sources, totals=source_weight)
    positive = int(np.flatnonzero(lr.classes_ == 1)[0])
    coef = lr.coef_[0].astype(np.float64)
    intercept = float(lr.intercept_[0])
    if positive == 0:  # classes_ is sorted, so this cannot happen; guard the sign anyway
        coef, intercept = -coef, -intercept
    calibrated = CalibratedClassifierCV(FrozenEstimator(lr), method="sigmoid")
    with warnings.catch_warnings():
        # The frozen estimator is already fitted and must not see the weights; the
        # warning that it "does not accept sample_weight" is exactly what we want.
        warnings.filterwarnings("ignore", message="Since FrozenEstimator", category=UserWarning)
        calibrated.fit(x[cal_idx], y_cal, sample_weight=w_cal)
    sigmoid = calibrated.calibrated_classifiers_[0].calibrators[0]
    head = Head(coef, intercept, float(sigmoid.a_), float(sigmoid.b_), sigmoid)
    lex_cal = None
    if lexicon_weight:
        if lex_logit is None:
            raise ValueError("lexicon_weight needs lex_logit")
        lex_cal = lex_logit[cal_idx]
        p_own = np.clip(head.probabilities(x[cal_idx]), 1e-12, 1 - 1e-12)
        mixed = np.log(p_own) - np.log1p(-p_own) + lexicon_weight * lex_cal
        platt = LogisticRegression(C=1e4, max_iter=1000)
        platt.fit(mixed[:, None], y_cal, sample_weight=w_cal)
        head = replace(
            head,
            lexicon_weight=lexicon_weight,
            mix_slope=float(platt.coef_[0, 0]),
            mix_offset=float(platt.intercept_[0]),
        )
    cal_probs = head.probabilities(x[cal_idx], lex_cal)
    return head, np.column_stack([cal_probs, y_cal, w_cal])


def train_rows(examples: Sequence[Example], label: str) -> list[Example]:
    """Training rows for ``label``, minus any text that also occurs in a test split."""
    test_texts = {e.text.strip().lower() for e in examples if e.label == label and e.test}
    seen: set[tuple[str, str]] = set()
    rows = []
    for e in examples:
        if e.label != label or e.test:
            continue
        key = (e.source, e.text)
        if key in seen or e.text.strip().lower() in test_texts:
            continue
        seen.add(key)
        rows.append(e)
    return rows


SUBSCORE_C = 1.0
# The calibration rows the suggested thresholds are read from, per label: for abuse the
# news comments (random draws of the product's own traffic; ToxicSpans is left out, as all
# of its comments were flagged toxic before re-annotation, so its negatives are not what a
# site's clean comments look like); for spam every source (no news source has spam).
THRESHOLD_SOURCES: dict[str, frozenset[str]] = {ABUSE: frozenset({CIVIL_SOURCE})}
MIN_THRESHOLD_NEGATIVES = 200


def threshold_rows(label: str, sources: Sequence[str], ys: Sequence[int]) -> np.ndarray:
    """Mask of the calibration rows the suggested thresholds of ``label`` come from.

    The rows of :data:`THRESHOLD_SOURCES`, or every row when those hold fewer than
    :data:`MIN_THRESHOLD_NEGATIVES` negatives (a small or subsampled training set).
    """
    keep = THRESHOLD_SOURCES.get(label)
    everything = np.ones(len(sources), dtype=bool)
    if keep is None:
        return everything
    mask = np.asarray([s in keep for s in sources], dtype=bool)
    negatives = sum(1 for m, y in zip(mask, ys, strict=True) if m and y == 0)
    return mask if negatives >= MIN_THRESHOLD_NEGATIVES else everything


def fit_subscores(
    examples: Sequence[Example], featurizer: Featurizer, seed: int, c: float = SUBSCORE_C
) -> tuple[np.ndarray, np.ndarray] | None:
    """One logistic regression per sub-score, fitted to rater fractions.

    Each training row with fractions counts twice: as a positive weighted by the share
    of raters who said yes and as a negative weighted by the rest, so the fitted
    probability estimates that share (the way Perspective's scores are defined).
    Returns ``(weights, intercepts)`` with one column per entry of ``SUBSCORES``, or
    ``None`` when no training row carries fractions.
    """
    rows = [e for e in train_rows(examples, ABUSE) if e.subscores is not None]
    if not rows:
        return None
    words, chars, dense, _ = featurizer.transform_parts([e.text for e in rows])
    x = sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
    xx = sp.vstack([x, x], format="csr")
    fractions = np.asarray([e.subscores for e in rows], dtype=np.float64)
    y = np.concatenate([np.ones(len(rows)), np.zeros(len(rows))]).astype(np.int64)
    weights = np.zeros((featurizer.n_features, len(SUBSCORES)), dtype=np.float32)
    intercepts = np.zeros(len(SUBSCORES))
    for j in range(len(SUBSCORES)):
        share = np.clip(fractions[:, j], 0.0, 1.0)
        w = np.concatenate([share, 1.0 - share]) + 1e-6
        lr = LogisticRegression(C=c, max_iter=300, solver="liblinear", random_state=seed)
        lr.fit(xx, y, sample_weight=w)
        weights[:, j] = lr.coef_[0]
        intercepts[j] = float(lr.intercept_[0])
    return weights, intercepts


def train_params(
    examples: Sequence[Example], config: TrainConfig, seed: int
) -> tuple[ModelParams, dict[str, Any]]:
    """Fit both heads on the non-test rows of ``examples``.

    Returns the parameters and a dict with thresholds and calibration-split info.
    """
    heads: dict[str, Head] = {}
    info: dict[str, Any] = {"thresholds": {}, "threshold_sources": {}, "training_rows": {}}
    featurizer = config.featurizer
    lexicon = from_profanity_check() if any(config.lexicon_weight.values()) else None
    for label in LABELS:
        rows = train_rows(examples, label)
        words, chars, dense, hashes = featurizer.transform_parts([e.text for e in rows])
        x = sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
        lex_logit = lexicon.logit(hashes) if lexicon is not None else None
        y = np.asarray([e.y for e in rows], dtype=np.int64)
        sources = [e.source for e in rows]
        head, cal = fit_head(
            x,
            y,
            sources,
            c=config.c[label],
            seed=seed,
            max_iter=config.max_iter,
            lex_logit=lex_logit,
            lexicon_weight=config.lexicon_weight.get(label, 0.0),
            source_weight=config.source_weight,
            balance_classes=config.balance_classes,
        )
        heads[label] = head
        probs, y_cal = cal[:, 0], cal[:, 1].astype(np.int64)
        cal_sources = np.asarray(sources)[calibration_mask(sources, y.tolist(), seed)]
        on = threshold_rows(label, cal_sources.tolist(), y_cal.tolist())
        info["thresholds"][label] = {
            "review": round(threshold_at_fpr(y_cal[on], probs[on], REVIEW_FPR), 4),
            "block": round(threshold_at_fpr(y_cal[on], probs[on], BLOCK_FPR), 4),
        }
        info["threshold_sources"][label] = sorted(set(cal_sources[on].tolist()))
        info["training_rows"][label] = dict(sorted(Counter(sources).items()))
    subscores = fit_subscores(examples, featurizer, seed)
    info["subscore_rows"] = sum(1 for e in train_rows(examples, ABUSE) if e.subscores is not None)
    params = ModelParams(
        labels=LABELS,
        featurizer=featurizer,
        weights=np.column_stack([heads[lab].coef for lab in LABELS]).astype(np.float32),
        intercepts=np.asarray([heads[lab].intercept for lab in LABELS]),
        calib_slope=np.asarray([heads[lab].calib_slope for lab in LABELS]),
        calib_offset=np.asarray([heads[lab].calib_offset for lab in LABELS]),
        calibrators=tuple(heads[lab].calibrator for lab in LABELS),
        lexicon=lexicon,
        lexicon_weight=None
        if lexicon is None
        else np.asarray([heads[lab].lexicon_weight for lab in LABELS]),
        mix_slope=None if lexicon is None else np.asarray([heads[lab].mix_slope for lab in LABELS]),
        mix_offset=None
        if lexicon is None
        else np.asarray([heads[lab].mix_offset for lab in LABELS]),
        sub_weights=None if subscores is None else subscores[0],
        sub_intercepts=None if subscores is None else subscores[1],
    )
    return params, info


def test_metrics(params: ModelParams, examples: Sequence[Example]) -> dict[str, Any]:
    """Per-label, per-source metrics on the test splits."""
    from classifier.model import Model  # noqa: PLC0415 - avoid a cycle at import

    model = Model(params, {"model_version": "candidate"})
    out: dict[str, Any] = {}
    for label in LABELS:
        col = params.labels.index(label)
        by_source: dict[str, list[Example]] = defaultdict(list)
        for e in examples:
            if e.label == label and e.test:
                by_source[e.source].append(e)
        out[label] = {}
        for source in sorted(by_source):
            rows = by_source[source]
            y = np.asarray([e.y for e in rows])
            if len(set(y.tolist())) < 2:
                continue
            p = model.probabilities([e.text for e in rows])[:, col]
            out[label][source] = {k: round(v, 4) for k, v in binary_metrics(y, p).items()}
    rows = [e for e in examples if e.test and e.subscores is not None]
    if model.has_subscores and rows:
        truth = np.asarray([e.subscores for e in rows], dtype=np.float64)
        pred = np.asarray(
            [[getattr(s, name) for name in SUBSCORES] for s in model.score([e.text for e in rows])]
        )
        out["subscores"] = {}
        for j, name in enumerate(SUBSCORES):
            entry: dict[str, float] = {
                "n": len(rows),
                "mae": round(float(np.mean(np.abs(pred[:, j] - truth[:, j]))), 4),
            }
            y_bin = (truth[:, j] >= 0.5).astype(np.int64)
            if 0 < y_bin.sum() < len(y_bin):
                auc = binary_metrics(y_bin, pred[:, j])["roc_auc"]
                entry.update(positives=int(y_bin.sum()), roc_auc=round(auc, 4))
            out["subscores"][name] = entry
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classifier train", description="Train the spam/abuse model."
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="dataset directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"artifact directory (default ${DEFAULT_MODEL_ENV} or .state/model)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-per-source", type=int, default=None, help="subsample each source to N rows"
    )
    parser.add_argument(
        "--site-labels",
        type=Path,
        default=None,
        help='JSON lines {"site_id", "text", "label": ok|spam|abuse|other}, oldest first: '
        "each site with enough labels gets its own adjustment on top of the shared model",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out_dir: Path = args.out if args.out is not None else default_model_dir()
    config = TrainConfig()
    started = time.perf_counter()
    try:
        examples = load_examples(
            args.data,
            max_per_source=args.max_per_source,
            seed=args.seed,
            offensive=config.offensive,
        )
        fingerprint = data_fingerprint(args.data)
        site_labels = read_site_labels(args.site_labels) if args.site_labels else []
        params, info = train_params(examples, config, args.seed)
    except (DataError, ValueError) as exc:
        sys.stderr.write(f"train: error: {exc}\n")
        return 2
    metrics = test_metrics(params, examples)
    outcomes: list[HeadOutcome] = []
    rule = SiteRule()
    if site_labels:
        shared = Model(params, {"model_version": "shared"})
        site_train, site_held = split_held_back(site_labels, rule.holdout_fraction)
        sites, outcomes = fit_sites(
            shared, site_train, site_held, rule=rule, general=[e for e in examples if e.test]
        )
        params = adapt(shared, sites)
    elapsed = time.perf_counter() - started
    code = code_fingerprint()
    version = model_version(fingerprint, code, args.seed, args.max_per_source)
    metadata = {
        "model_version": version,
        "data_sha256": fingerprint,
        "code_sha256": code,
        "seed": args.seed,
        "max_per_source": args.max_per_source,
        "hyperparameters": config.describe(),
        "abuse_sources": list(ABUSE_SOURCES),
        "training_rows": info["training_rows"],
        "subscores": list(SUBSCORES) if params.sub_weights is not None else [],
        "subscore_training_rows": info["subscore_rows"],
        "suggested_thresholds": info["thresholds"],
        "suggested_thresholds_from": info["threshold_sources"],
        "metrics": {"test_split": metrics},
        "training_seconds": round(elapsed, 1),
    }
    if site_labels:
        metadata["sites"] = site_summary(params, outcomes)
        metadata["site_rule"] = rule.describe()
        metadata["site_labels_sha256"] = hashlib.sha256(args.site_labels.read_bytes()).hexdigest()
        metadata["model_version"] = version = f"{version}-l{metadata['site_labels_sha256'][:10]}"
    write_artifact(out_dir, params, metadata)
    sys.stderr.write(f"train: wrote {out_dir} (version {version}) in {elapsed:.1f}s\n")
    for o in outcomes:
        sys.stderr.write(f"  site {o.site_id} {o.label}: {o.reason}\n")
    for label, per_source in metrics.items():
        if label == "subscores":
            for name, m in per_source.items():
                auc = f" roc_auc@0.5={m['roc_auc']:.3f}" if "roc_auc" in m else ""
                sys.stderr.write(f"  {name:16} civil_comments mae={m['mae']:.3f}{auc}\n")
            continue
        for source, m in per_source.items():
            sys.stderr.write(
                f"  {label:5} {source:18} roc_auc={m['roc_auc']:.3f} pr_auc={m['pr_auc']:.3f} "
                f"recall@1%fpr={m['recall_at_1pct_fpr']:.3f} ece={m['ece']:.3f}\n"
            )
    return 0
