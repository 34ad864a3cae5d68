"""Binary classification metrics used by training and evaluation."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["binary_metrics", "expected_calibration_error", "recall_at_fpr", "threshold_at_fpr"]


def recall_at_fpr(y: np.ndarray, p: np.ndarray, fpr: float = 0.01) -> float:
    """Largest recall reachable while the false-positive rate stays <= ``fpr``."""
    fprs, tprs, _ = roc_curve(y, p)
    ok = fprs <= fpr
    return float(tprs[ok].max()) if ok.any() else 0.0


def threshold_at_fpr(y: np.ndarray, p: np.ndarray, fpr: float) -> float:
    """Smallest score threshold whose false-positive rate is <= ``fpr``."""
    negatives = np.sort(p[y == 0])
    if negatives.size == 0:
        return 0.5
    k = int(np.floor(fpr * negatives.size))
    # Scores strictly above the (n-k)-th highest negative are flagged.
    cut = negatives[negatives.size - k - 1]
    return float(min(np.nextafter(cut, 1.0), 1.0))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width probability bins, weighted by size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() * abs(float(y[sel].mean()) - float(p[sel].mean()))
    return total / max(len(p), 1)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
        "ece": expected_calibration_error(y, p),
        "n": float(len(y)),
        "positives": float(y.sum()),
    }
