"""Pure rules of the learning loop: when a retrained model may replace the live one, and which
thresholds meet a site's error targets. No I/O: the numbers come in, the verdict goes out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.domain.model import Label, Scores


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """A candidate is promoted only if, for every label, it is not worse than the live model by
    more than these margins (ROC-AUC) on the standard test splits and on the held-back recent
    human labels, and at least one label could be judged on the held-back labels."""

    test_margin: float = 0.005  # mean ROC-AUC over the shipped test splits
    brier_margin: float = 0.01  # mean Brier score there: calibration, what thresholds rely on
    holdout_margin: float = 0.02  # ROC-AUC on the held-back slice of recent human labels
    holdout_fraction: float = 0.2  # the newest share of the labels, never trained on
    min_labels: int = 50  # fewer usable labels: nothing to learn from, no retraining

    def describe(self) -> str:
        return (
            f"promote only if, for spam and for abuse, on the shipped test splits (means over "
            f"sources) candidate ROC-AUC >= live - {self.test_margin} and candidate Brier score "
            f"<= live + {self.brier_margin}, and on the newest {self.holdout_fraction:.0%} of the "
            f"human labels (held back from training) candidate ROC-AUC >= live - "
            f"{self.holdout_margin}; a label is judged on the held-back labels only with both "
            "classes present, and at least one label must be"
        )


@dataclass(frozen=True, slots=True)
class HeadComparison:
    label: Label
    live_test: float  # mean ROC-AUC over the test splits' sources
    candidate_test: float
    live_brier: float  # mean Brier score over the same
    candidate_brier: float
    live_holdout: float | None  # None: the held-back slice lacks one of the classes
    candidate_holdout: float | None
    holdout_positives: int
    holdout_negatives: int


@dataclass(frozen=True, slots=True)
class Verdict:
    promote: bool
    reasons: tuple[str, ...]


def judge(heads: Sequence[HeadComparison], rule: PromotionRule) -> Verdict:
    reasons: list[str] = []
    judged = 0
    for h in heads:
        drop = h.live_test - h.candidate_test
        if drop > rule.test_margin:
            reasons.append(
                f"{h.label.value}: test-split ROC-AUC {h.candidate_test:.4f} is {drop:.4f} below "
                f"the live model's {h.live_test:.4f} (margin {rule.test_margin})"
            )
        rise = h.candidate_brier - h.live_brier
        if rise > rule.brier_margin:
            reasons.append(
                f"{h.label.value}: test-split Brier score {h.candidate_brier:.4f} is {rise:.4f} "
                f"above the live model's {h.live_brier:.4f} (margin {rule.brier_margin}): its "
                "probabilities are worse calibrated, so thresholds would change meaning"
            )
        if h.live_holdout is None or h.candidate_holdout is None:
            continue
        judged += 1
        drop = h.live_holdout - h.candidate_holdout
        if drop > rule.holdout_margin:
            reasons.append(
                f"{h.label.value}: held-back ROC-AUC {h.candidate_holdout:.4f} is {drop:.4f} "
                f"below the live model's {h.live_holdout:.4f} (margin {rule.holdout_margin})"
            )
    if judged == 0:
        reasons.append(
            "no label could be judged on the held-back human labels (each needs both classes)"
        )
    return Verdict(not reasons, tuple(reasons))


@dataclass(frozen=True, slots=True)
class LabelThresholds:
    label: Label
    review_at: float  # below: approved without a human
    reject_at: float  # at or above: rejected without a human
    good_rejected: float  # share of the labelled good comments at or above reject_at
    bad_missed: float  # share of the labelled bad comments below review_at


@dataclass(frozen=True, slots=True)
class ThresholdSuggestion:
    labels: tuple[LabelThresholds, ...]
    human_share: float | None  # of recent traffic between the thresholds; None: no traffic
    traffic: int
    good: int
    bad: dict[Label, int]


def _cut(values: Sequence[float], share: float, *, upper: bool) -> float:
    """The loosest cut leaving at most `share` of `values` on the wrong side. `upper`: the
    lowest t with #(v >= t) <= share * n (no values: 1.0, reject nothing); else the highest
    t with #(v < t) <= share * n (no values: 1.0, nothing known to miss)."""
    ordered = sorted(values)
    n = len(ordered)
    allowed = int(share * n + 1e-9)
    if upper:
        if n == 0:
            return 1.0
        # just above the highest value that must not be rejected; thresholds end at 1
        return min(1.0, ordered[n - allowed - 1] + 1e-6) if allowed < n else 0.0
    return 1.0 if allowed >= n else ordered[allowed]


def suggest_thresholds(
    good: Sequence[Scores],
    bad: Mapping[Label, Sequence[Scores]],
    traffic: Sequence[Scores],
    *,
    max_false_reject: float,
    max_miss: float,
) -> ThresholdSuggestion:
    """Thresholds per label meeting the targets on the labelled comments: at most
    `max_false_reject` of good comments auto-rejected (the budget split evenly between the
    labels, as either can reject), and at most `max_miss` of each label's bad comments
    auto-approved. The human share is that of recent traffic scoring between the two."""
    per_label = max_false_reject / len(Label)
    out = []
    for label in Label:
        good_scores = [s.of(label) for s in good]
        bad_scores = [s.of(label) for s in bad.get(label, ())]
        # rounded outward to 4 decimals: a stricter cut, so the targets still hold
        reject_at = min(1.0, math.ceil(_cut(good_scores, per_label, upper=True) * 1e4) / 1e4)
        review_at = math.floor(_cut(bad_scores, max_miss, upper=False) * 1e4) / 1e4
        review_at = min(review_at, reject_at)
        out.append(
            LabelThresholds(
                label,
                review_at,
                reject_at,
                _share(sum(1 for v in good_scores if v >= reject_at), len(good_scores)),
                _share(sum(1 for v in bad_scores if v < review_at), len(bad_scores)),
            )
        )
    human = [
        s
        for s in traffic
        if all(s.of(t.label) < t.reject_at for t in out)
        and any(s.of(t.label) >= t.review_at for t in out)
    ]
    return ThresholdSuggestion(
        tuple(out),
        len(human) / len(traffic) if traffic else None,
        len(traffic),
        len(good),
        {label: len(bad.get(label, ())) for label in Label},
    )


def _share(hits: int, total: int) -> float:
    return hits / total if total else 0.0
