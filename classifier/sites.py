"""Per-site adjustments: each newsroom's own moderators make the model theirs.

A site with enough labels gets, per label, a small logistic regression stacked on the shared
model: its inputs are the shared model's calibrated log-odds and the shared featuriser's row
for the text, so it can move the site's threshold (the intercept), trust the shared score more
or less (the scale) and learn the site's own words (sparse weights, strongly regularised). It
is used only for comments of that site (`Model.score(..., site_ids=...)`): the shared weights
are never refitted, so one site's labels cannot change another site's scores.

An adjustment is kept only if it passes the guard (:class:`SiteRule`): on the site's
held-back labels its ROC-AUC is at least the shared model's, and on the shipped test splits
(other sites' comments scored as if they were this site's) it is not much worse than the
shared model, which catches a label set that contradicts what abuse and spam are.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from classifier.data import DataError, Example
from classifier.labels import ABUSE, SPAM
from classifier.model import Model, ModelParams, SiteParams

__all__ = [
    "SITE_LABELS",
    "HeadOutcome",
    "SiteLabel",
    "SiteRule",
    "adapt",
    "fit_sites",
    "read_site_labels",
    "site_summary",
    "split_held_back",
]

OK = "ok"
OTHER = "other"
SITE_LABELS = (OK, SPAM, ABUSE, OTHER)
# The shared log-odds enter the site's regression multiplied by this, so that the L2 penalty
# meant for the site's own word weights barely constrains how far it trusts the shared score.
_LOGIT_SCALE = 10.0


@dataclass(frozen=True, slots=True)
class SiteLabel:
    """A moderator's label for one comment of one site: ``ok``, ``spam``, ``abuse`` or
    ``other`` (rejected for another reason: it says nothing about spam or abuse)."""

    site_id: str
    text: str
    label: str


@dataclass(frozen=True, slots=True)
class SiteRule:
    """When a site gets an adjustment for a label, and how it is fitted."""

    min_labels: int = 50  # of the label's positives and ``ok`` together, for training
    min_per_class: int = 10  # of each class among them
    holdout_fraction: float = 0.2  # the newest share, held back to judge the adjustment
    min_held_per_class: int = 10  # fewer held-back of a class: too noisy to judge on
    min_gain: float = 0.002  # ROC-AUC over the shared model on the held-back labels
    max_general_drop: float = 0.05  # ROC-AUC on the shipped test splits, against shared
    c: float = 0.25  # inverse L2 strength of the site's own weights

    def describe(self) -> str:
        return (
            f"a site gets its own adjustment for spam or abuse with at least {self.min_labels} "
            f"labels of that kind and ok (at least {self.min_per_class} of each), kept only if "
            f"on the newest {self.holdout_fraction:.0%} of the site's labels (held back, at least "
            f"{self.min_held_per_class} of each class) its ROC-AUC beats the shared model's by "
            f"{self.min_gain} or more and is above chance by two standard errors, and on the "
            "shipped test splits it is at most "
            f"{self.max_general_drop} below the shared model"
        )


@dataclass(frozen=True, slots=True)
class HeadOutcome:
    """What happened to one site's adjustment for one label."""

    site_id: str
    label: str
    trained_on: int
    held_back: int
    shared_auc: float | None  # on the held-back labels; None: not judged
    site_auc: float | None
    general_shared_auc: float | None  # on the shipped test splits
    general_site_auc: float | None
    kept: bool
    reason: str


def read_site_labels(path: Path) -> list[SiteLabel]:
    """One JSON object a line: ``{"site_id": ..., "text": ..., "label": ...}``, oldest first.

    Raises :class:`DataError` naming the line of the first bad one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read site labels: {exc}") from exc
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: expected a JSON object")
        site_id, text, label = obj.get("site_id"), obj.get("text"), obj.get("label")
        if not isinstance(site_id, str) or not site_id:
            raise DataError(f"{path}:{n}: site_id must be a non-empty string")
        if not isinstance(text, str):
            raise DataError(f"{path}:{n}: text must be a string")
        if label not in SITE_LABELS:
            raise DataError(f"{path}:{n}: label must be one of {', '.join(SITE_LABELS)}")
        out.append(SiteLabel(site_id, text, label))
    return out


def split_held_back(
    labels: Sequence[SiteLabel], fraction: float
) -> tuple[list[SiteLabel], list[SiteLabel]]:
    """(train, held back): the newest ``fraction`` of each site's labels, in the given order,
    is held back."""
    by_site: dict[str, list[SiteLabel]] = defaultdict(list)
    for e in labels:
        by_site[e.site_id].append(e)
    train, held = [], []
    for rows in by_site.values():
        cut = len(rows) - round(len(rows) * fraction)
        train += rows[:cut]
        held += rows[cut:]
    return train, held


def _head_rows(labels: Sequence[SiteLabel], label: str) -> tuple[list[str], np.ndarray]:
    rows = [e for e in labels if e.label in (label, OK)]
    return [e.text for e in rows], np.asarray([int(e.label == label) for e in rows])


def _auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley and McNeil's (1982) standard error of a ROC-AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if 0 < int(y.sum()) < len(y) else None


@dataclass(frozen=True, slots=True)
class _Fitted:
    scale: float
    intercept: float
    weights: np.ndarray  # dense over the features (zero where the site's texts had none)


def _fit_head(logit: np.ndarray, x: sp.csr_matrix, y: np.ndarray, rule: SiteRule) -> _Fitted:
    design = sp.hstack([sp.csr_matrix(logit[:, None] * _LOGIT_SCALE), x], format="csr")
    lr = LogisticRegression(C=rule.c, solver="liblinear", max_iter=500, random_state=0)
    lr.fit(design, y)
    coef = lr.coef_[0]
    return _Fitted(float(coef[0] * _LOGIT_SCALE), float(lr.intercept_[0]), coef[1:])


def _apply(fitted: _Fitted, logit: np.ndarray, x: sp.csr_matrix) -> np.ndarray:
    out: np.ndarray = logit * fitted.scale + np.asarray(x @ fitted.weights) + fitted.intercept
    return out


@dataclass(frozen=True, slots=True)
class _General:
    """The shipped test rows of one label, featurised once, for the guard."""

    logit: np.ndarray
    x: sp.csr_matrix
    y: np.ndarray
    shared_auc: float | None


def _general_rows(model: Model, tests: Sequence[Example]) -> dict[str, _General]:
    out = {}
    for j, label in enumerate(model.params.labels):
        rows = [e for e in tests if e.label == label and e.test]
        if not rows:
            continue
        logits, x = model.shared_logits([e.text for e in rows])
        y = np.asarray([e.y for e in rows])
        out[label] = _General(logits[:, j], x, y, _auc(y, logits[:, j]))
    return out


def fit_sites(
    model: Model,
    train: Sequence[SiteLabel],
    held_back: Sequence[SiteLabel],
    *,
    rule: SiteRule | None = None,
    general: Sequence[Example] = (),
) -> tuple[dict[str, SiteParams], list[HeadOutcome]]:
    """Fit each site's adjustments on ``train``, judge them on ``held_back`` (and, when given,
    on the shipped test rows ``general``), and return the kept ones with every outcome."""
    rule = rule or SiteRule()
    labels = model.params.labels
    n_features = model.params.featurizer.n_features
    guard = _general_rows(model, general)
    by_site: dict[str, list[SiteLabel]] = defaultdict(list)
    for e in train:
        by_site[e.site_id].append(e)
    held_by_site: dict[str, list[SiteLabel]] = defaultdict(list)
    for e in held_back:
        held_by_site[e.site_id].append(e)
    sites: dict[str, SiteParams] = {}
    outcomes: list[HeadOutcome] = []
    for site_id in sorted(by_site):
        kept: dict[int, _Fitted] = {}
        for j, label in enumerate(labels):
            outcome, fitted = _site_head(
                model, site_id, j, label, by_site[site_id], held_by_site[site_id], rule, guard
            )
            outcomes.append(outcome)
            if fitted is not None:
                kept[j] = fitted
        if kept:
            weights = np.zeros((n_features, len(labels)), dtype=np.float32)
            for j, fitted in kept.items():
                weights[:, j] = fitted.weights
            sites[site_id] = SiteParams(
                adapted=tuple(j in kept for j in range(len(labels))),
                scale=np.asarray([kept[j].scale if j in kept else 1.0 for j in range(len(labels))]),
                intercept=np.asarray(
                    [kept[j].intercept if j in kept else 0.0 for j in range(len(labels))]
                ),
                weights=sp.csc_matrix(weights),
                labels_used=len(by_site[site_id]),
            )
    return sites, outcomes


def _site_head(  # noqa: PLR0917 - one call site, every argument needed
    model: Model,
    site_id: str,
    j: int,
    label: str,
    train: Sequence[SiteLabel],
    held_back: Sequence[SiteLabel],
    rule: SiteRule,
    guard: Mapping[str, _General],
) -> tuple[HeadOutcome, _Fitted | None]:
    texts, y = _head_rows(train, label)
    held_texts, held_y = _head_rows(held_back, label)
    base = HeadOutcome(site_id, label, len(y), len(held_y), None, None, None, None, False, "")
    positives = int(y.sum())
    if len(y) < rule.min_labels or min(positives, len(y) - positives) < rule.min_per_class:
        return replace(
            base,
            reason=f"{positives} {label} and {len(y) - positives} ok labels to train on: "
            f"needs {rule.min_labels} with {rule.min_per_class} of each",
        ), None
    held_positives = int(held_y.sum())
    if min(held_positives, len(held_y) - held_positives) < rule.min_held_per_class:
        return replace(
            base,
            reason=f"{held_positives} {label} and {len(held_y) - held_positives} ok held-back "
            f"labels: judging needs {rule.min_held_per_class} of each",
        ), None
    logits, x = model.shared_logits(texts)
    fitted = _fit_head(logits[:, j], x, y, rule)
    held_logits, held_x = model.shared_logits(held_texts)
    shared_auc = _auc(held_y, held_logits[:, j])
    site_auc = _auc(held_y, _apply(fitted, held_logits[:, j], held_x))
    judged = replace(base, shared_auc=shared_auc, site_auc=site_auc)
    if shared_auc is None or site_auc is None or site_auc < shared_auc + rule.min_gain:
        return replace(
            judged,
            reason=f"no better on the site's held-back labels: ROC-AUC {_fmt(site_auc)} against "
            f"the shared model's {_fmt(shared_auc)} (needs +{rule.min_gain})",
        ), None
    floor = 0.5 + 2 * _auc_standard_error(site_auc, held_positives, len(held_y) - held_positives)
    if site_auc < floor:
        return replace(
            judged,
            reason=f"the site's held-back labels look like noise to it: ROC-AUC {site_auc:.4f} is "
            f"not above chance by two standard errors ({floor:.4f})",
        ), None
    general = guard.get(label)
    if general is not None and general.shared_auc is not None:
        general_auc = _auc(general.y, _apply(fitted, general.logit, general.x))
        judged = replace(
            judged, general_shared_auc=general.shared_auc, general_site_auc=general_auc
        )
        if general_auc is None or general.shared_auc - general_auc > rule.max_general_drop:
            return replace(
                judged,
                reason=f"on the shipped test splits ROC-AUC {_fmt(general_auc)} with the site's "
                f"adjustment against {_fmt(general.shared_auc)} without (more than "
                f"{rule.max_general_drop} below): the labels contradict what {label} is",
            ), None
    return replace(judged, kept=True, reason="kept"), fitted


def adapt(model: Model, sites: Mapping[str, SiteParams]) -> ModelParams:
    """The model's parameters with ``sites`` as its site adjustments (the shared part as is)."""
    params = replace(model.params, sites=dict(sites))
    params.validate()
    return params


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def site_summary(params: ModelParams, outcomes: Sequence[HeadOutcome]) -> dict[str, object]:
    """For model.json: per site, the labels it was fitted on and each label's outcome."""
    out: dict[str, object] = {}
    for site_id in sorted({o.site_id for o in outcomes}):
        site = params.sites.get(site_id)
        out[site_id] = {
            "adjusted": site is not None,
            "labels_used": 0 if site is None else site.labels_used,
            "heads": {
                o.label: {
                    "kept": o.kept,
                    "trained_on": o.trained_on,
                    "held_back": o.held_back,
                    "held_back_auc_shared": _round(o.shared_auc),
                    "held_back_auc_site": _round(o.site_auc),
                    "test_split_auc_shared": _round(o.general_shared_auc),
                    "test_split_auc_site": _round(o.general_site_auc),
                    "reason": o.reason,
                }
                for o in outcomes
                if o.site_id == site_id
            },
        }
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
