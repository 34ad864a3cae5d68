"""`moderation retrain` and `moderation suggest-thresholds`: the learning loop's commands.

Retraining gives each site whose moderators have labelled enough comments its own adjustment
on top of the live model's shared part (`classifier.sites`): the shared weights are never
refitted from human labels, so one site's moderators never move another site's scores. The
newest share of the labels is held back: each site's adjustment is kept only if it beats the
shared model on that site's held-back labels (and does not contradict the shipped test splits),
then the candidate is judged against the live model by the `PromotionRule`, and only a
candidate that passes becomes the live model (through the `PromoteModel` port:
`service.adapters.model_registry.promote`); running services pick it up between batches.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

import classifier
from classifier.data import DEFAULT_DATA_DIR, Example, load_examples
from classifier.model import write_artifact
from classifier.sites import HeadOutcome, SiteLabel, SiteRule, adapt, fit_sites, site_summary
from classifier.train import TrainConfig
from service.domain.feedback import LabelledExample, ReasonSource, TrainingLabel
from service.domain.learning import (
    HeadComparison,
    PromotionRule,
    ThresholdSuggestion,
    Verdict,
    judge,
    suggest_thresholds,
)
from service.domain.model import Label, Scores
from service.usecases.ports import LearningStore, PromoteModel

_POSITIVE = {Label.SPAM: TrainingLabel.SPAM, Label.ABUSE: TrainingLabel.ABUSE}


class RetrainError(Exception):
    """Retraining cannot run (too few labels, no live model, ...); the message says why."""


@dataclass(frozen=True, slots=True)
class RetrainReport:
    live_version: str
    candidate_version: str
    labels_used: int  # trained on
    labels_held_back: int
    heads: tuple[HeadComparison, ...]
    verdict: Verdict
    rule: PromotionRule
    promoted_to: Path | None  # None: refused, a dry run, or written as a candidate only
    seconds: float
    candidate_at: Path | None = None  # written for shadow mode, not promoted
    sites: tuple[HeadOutcome, ...] = ()
    site_rule: SiteRule = field(default_factory=SiteRule)


def head_examples(labels: Sequence[LabelledExample], head: Label) -> list[tuple[str, int]]:
    """(text, y) for one head: its positives against the comments approved as fine. A spam
    label says nothing about abuse (and the reverse), and `other` says nothing about either."""
    return [(text, y) for _, text, y in _head_rows(labels, head)]


def _head_rows(labels: Sequence[LabelledExample], head: Label) -> list[tuple[str, str, int]]:
    positive = _POSITIVE[head]
    return [
        (e.site_id, e.text, int(e.label is positive))
        for e in labels
        if e.label in (positive, TrainingLabel.OK)
    ]


def as_site_labels(labels: Sequence[LabelledExample]) -> list[SiteLabel]:
    """The labels as each site's moderator labels for `classifier.sites`, in the same order."""
    return [SiteLabel(e.site_id, e.text, e.label.value) for e in labels]


def trainable(labels: Sequence[LabelledExample]) -> list[LabelledExample]:
    """The labels to learn from: spam, abuse or ok, for a reason a moderator gave. A guessed
    reason (the page's old guess from the model's own scores, or a rejection that named none)
    would teach the model what it already believed. Given each comment's latest label, one
    whose latest is guessed is left out, not learned from an older label since overruled."""
    return [
        e
        for e in labels
        if e.label is not TrainingLabel.OTHER and e.reason_source is ReasonSource.MODERATOR
    ]


def split_recent(
    labels: Sequence[LabelledExample], fraction: float
) -> tuple[list[LabelledExample], list[LabelledExample]]:
    """(older, newest): the newest `fraction` is held back to judge on."""
    ordered = sorted(labels, key=lambda e: (e.labelled_at, e.site_id, e.comment_id))
    cut = len(ordered) - max(1, round(len(ordered) * fraction))
    return ordered[:cut], ordered[cut:]


def _auc(y: Sequence[int], p: np.ndarray) -> float | None:
    if len(set(y)) < 2:
        return None
    return float(roc_auc_score(np.asarray(y), p))


def _column(model: classifier.Model, head: Label) -> int:
    return list(model.params.labels).index(head.value)


def test_split_metrics(
    model: classifier.Model, tests: Sequence[Example], head: Label
) -> tuple[float, float]:
    """Mean ROC-AUC and mean Brier score over the sources of the shipped test splits
    labelled for `head`."""
    by_source: dict[str, list[Example]] = {}
    for e in tests:
        if e.label == head.value and e.test:
            by_source.setdefault(e.source, []).append(e)
    aucs, briers = [], []
    for rows in by_source.values():
        p = model.probabilities([e.text for e in rows])[:, _column(model, head)]
        y = [e.y for e in rows]
        auc = _auc(y, p)
        if auc is not None:
            aucs.append(auc)
            briers.append(float(brier_score_loss(np.asarray(y), p)))
    if not aucs:
        raise RetrainError(f"the shipped data has no {head.value} test split")
    return float(np.mean(aucs)), float(np.mean(briers))


def holdout_auc(
    model: classifier.Model, holdout: Sequence[LabelledExample], head: Label
) -> float | None:
    rows = _head_rows(holdout, head)
    if not rows:
        return None
    texts = [text for _, text, _ in rows]
    sites = [site for site, _, _ in rows]
    p = model.probabilities(texts, site_ids=sites)[:, _column(model, head)]
    return _auc([y for _, _, y in rows], p)


def compare(
    live: classifier.Model,
    candidate: classifier.Model,
    tests: Sequence[Example],
    holdout: Sequence[LabelledExample],
) -> tuple[HeadComparison, ...]:
    heads = []
    for head in Label:
        ys = [y for _, y in head_examples(holdout, head)]
        live_auc, live_brier = test_split_metrics(live, tests, head)
        cand_auc, cand_brier = test_split_metrics(candidate, tests, head)
        heads.append(
            HeadComparison(
                head,
                live_auc,
                cand_auc,
                live_brier,
                cand_brier,
                holdout_auc(live, holdout, head),
                holdout_auc(candidate, holdout, head),
                sum(ys),
                len(ys) - sum(ys),
            )
        )
    return tuple(heads)


def labels_digest(labels: Sequence[LabelledExample]) -> str:
    digest = hashlib.sha256()
    for e in sorted(labels, key=lambda e: (e.site_id, e.comment_id)):
        digest.update(f"{e.site_id}\x1f{e.comment_id}\x1f{e.label.value}\x1e".encode())
    return digest.hexdigest()


def retrain(
    labels: Sequence[LabelledExample],
    *,
    model_path: Path,
    promote: PromoteModel,
    data_dir: Path = DEFAULT_DATA_DIR,
    rule: PromotionRule | None = None,
    site_rule: SiteRule | None = None,
    dry_run: bool = False,
    candidate_out: Path | None = None,
) -> RetrainReport:
    """Fit the sites' adjustments, compare, and promote if the rules allow; with
    `candidate_out`, write the candidate there instead (to run it in shadow mode first) and
    promote nothing. Raises `RetrainError`."""
    rule = rule or PromotionRule()
    site_rule = site_rule or replace(SiteRule(), holdout_fraction=rule.holdout_fraction)
    started = time.perf_counter()
    try:
        live = classifier.load_model(model_path)
    except classifier.ModelLoadError as exc:
        raise RetrainError(f"cannot load the live model: {exc}") from exc
    usable = trainable(labels)
    if len(usable) < rule.min_labels:
        guessed = sum(1 for e in labels if e.reason_source is not ReasonSource.MODERATOR)
        raise RetrainError(
            f"the label store has {len(usable)} usable labels (spam, abuse or ok, for a reason "
            f"a moderator gave; {guessed} with a guessed reason left out); retraining needs at "
            f"least {rule.min_labels}"
        )
    seed = int(live.metadata.get("seed") or 0)
    older, held_back = split_recent(usable, rule.holdout_fraction)
    tests = [
        e for e in load_examples(data_dir, seed=seed, offensive=TrainConfig().offensive) if e.test
    ]
    shared = classifier.Model(replace(live.params, sites={}), live.metadata)
    sites, outcomes = fit_sites(
        shared, as_site_labels(older), as_site_labels(held_back), rule=site_rule, general=tests
    )
    params = adapt(shared, sites)
    shared_version = str(live.metadata.get("shared_version") or live.version)
    version = f"{shared_version}-l{labels_digest(older)[:10]}"
    metadata: dict[str, Any] = {
        **{k: v for k, v in live.metadata.items() if k not in _PER_CANDIDATE},
        "model_version": version,
        "shared_version": shared_version,
        "parent_version": live.version,
        "human_labels": {"trained_on": len(older), "held_back": len(held_back)},
        "sites": site_summary(params, outcomes),
        "site_rule": site_rule.describe(),
    }
    candidate = classifier.Model(params, metadata)
    heads = compare(live, candidate, tests, held_back)
    verdict = judge(heads, rule)
    if not sites:
        verdict = Verdict(
            False,
            (
                *verdict.reasons,
                "no site's adjustment was kept: "
                + "; ".join(f"{o.site_id} {o.label}: {o.reason}" for o in outcomes),
            ),
        )
    promoted_to = None
    metadata["promotion"] = {
        "rule": rule.describe(),
        "passed": verdict.promote,
        "heads": [
            {
                "label": h.label.value,
                "live_test_auc": round(h.live_test, 4),
                "candidate_test_auc": round(h.candidate_test, 4),
                "live_test_brier": round(h.live_brier, 4),
                "candidate_test_brier": round(h.candidate_brier, 4),
                "live_holdout_auc": _round(h.live_holdout),
                "candidate_holdout_auc": _round(h.candidate_holdout),
            }
            for h in heads
        ],
    }
    if candidate_out is not None:
        write_artifact(candidate_out, params, metadata)
    elif verdict.promote and not dry_run and version != live.version:
        with tempfile.TemporaryDirectory(dir=model_path.parent) as scratch:
            staged = Path(scratch) / "candidate"
            write_artifact(staged, params, metadata)
            promoted_to = promote(model_path, staged, version)
    return RetrainReport(
        live.version,
        version,
        len(older),
        len(held_back),
        heads,
        verdict,
        rule,
        promoted_to,
        time.perf_counter() - started,
        candidate_out,
        tuple(outcomes),
        site_rule,
    )


# model.json keys that describe one candidate, not the shared model it inherits
_PER_CANDIDATE = frozenset(
    {"promotion", "sites", "site_rule", "human_labels", "parent_version", "site_labels_sha256"}
)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def render(report: RetrainReport) -> str:
    lines = [
        f"live model:      {report.live_version}",
        f"candidate model: {report.candidate_version}",
        f"human labels:    {report.labels_used} trained on, {report.labels_held_back} held back "
        f"(the newest); trained and compared in {report.seconds:.1f}s",
        "",
        "ROC-AUC and Brier score on the shipped test splits (mean over sources), ROC-AUC on "
        "the held-back labels (positives/negatives):",
        f"{'label':6} {'auc live':>9} {'auc cand':>9} {'brier live':>11} {'brier cand':>11} "
        f"{'held live':>10} {'held cand':>10} {'held +/-':>9}",
    ]
    for h in report.heads:
        lines.append(
            f"{h.label.value:6} {h.live_test:9.4f} {h.candidate_test:9.4f} {h.live_brier:11.4f} "
            f"{h.candidate_brier:11.4f} {_fmt(h.live_holdout):>10} "
            f"{_fmt(h.candidate_holdout):>10} {h.holdout_positives:>4}/{h.holdout_negatives:<4}"
        )
    lines += [
        "",
        "per-site adjustments (ROC-AUC on the site's held-back labels, shared -> with the "
        "adjustment):",
    ]
    for o in report.sites:
        lines.append(
            f"  {o.site_id} {o.label}: {o.trained_on} trained on, {o.held_back} held back, "
            f"{_fmt(o.shared_auc)} -> {_fmt(o.site_auc)}: {o.reason}"
        )
    lines += [
        "",
        f"rule: {report.rule.describe()}",
        f"site rule: {report.site_rule.describe()}",
        "",
    ]
    if report.candidate_at is not None:
        lines.append(
            f"candidate written to {report.candidate_at} (not promoted); run it in shadow mode "
            f"with MODERATION_SHADOW_MODEL_PATH={report.candidate_at}"
        )
    if report.verdict.promote:
        where = report.promoted_to
        lines.append(
            f"verdict: PROMOTED -> {where}"
            if where is not None
            else "verdict: passes the rule (not promoted: dry run, candidate only, or no new "
            "labels)"
        )
    else:
        lines.append("verdict: REFUSED")
        lines += [f"  - {reason}" for reason in report.verdict.reasons]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


async def thresholds_for(
    store: LearningStore,
    model: classifier.Model,
    site_id: str,
    *,
    max_false_reject: float,
    max_miss: float,
    now: datetime,
    traffic_days: int = 30,
    traffic_limit: int = 20_000,
) -> ThresholdSuggestion:
    """Thresholds from the site's human labels and the human share from its latest comments
    (at most `traffic_limit` of the last `traffic_days`), all rescored with the live model:
    stored scores may come from older versions."""
    labels = trainable(await store.labels(site_id=site_id))
    scored = _scores(model, [e.text for e in labels], site_id)
    good = [s for e, s in zip(labels, scored, strict=True) if e.label is TrainingLabel.OK]
    bad = {
        head: [s for e, s in zip(labels, scored, strict=True) if e.label is _POSITIVE[head]]
        for head in Label
    }
    recent = await store.recent_texts(
        site_id, since=now - timedelta(days=traffic_days), limit=traffic_limit
    )
    traffic = _scores(model, recent, site_id)
    return suggest_thresholds(
        good, bad, traffic, max_false_reject=max_false_reject, max_miss=max_miss
    )


def _scores(model: classifier.Model, texts: Sequence[str], site_id: str) -> list[Scores]:
    """The site's scores (with its adjustment, if the model has one)."""
    scored = model.score(texts, site_ids=[site_id] * len(texts)) if texts else []
    return [Scores(spam=s.spam, abuse=s.abuse) for s in scored]


def render_thresholds(site_id: str, s: ThresholdSuggestion, targets: tuple[float, float]) -> str:
    max_false_reject, max_miss = targets
    lines = [
        f"site {site_id}: {s.good} comments labelled ok, "
        + ", ".join(f"{n} {label.value}" for label, n in s.bad.items())
        + f"; targets: at most {max_false_reject:.2%} of good comments auto-rejected, at most "
        f"{max_miss:.2%} of bad ones auto-approved",
        "",
        f"{'label':6} {'review at':>10} {'reject at':>10} {'good rejected':>14} {'bad missed':>11}",
    ]
    for t in s.labels:
        lines.append(
            f"{t.label.value:6} {t.review_at:10.4f} {t.reject_at:10.4f} "
            f"{t.good_rejected:14.2%} {t.bad_missed:11.2%}"
        )
    lines.append("")
    if s.human_share is None:
        lines.append("expected share needing a human: unknown (no recent traffic stored)")
    else:
        lines.append(
            f"expected share needing a human: {s.human_share:.1%} of the last {s.traffic} comments"
        )
    if s.good < 100 or min(s.bad.values()) < 20:
        lines.append(
            "warning: few labels, so these thresholds are rough; the labels are also only the "
            "comments a human saw (the queue, reports, appeals), not a sample of all traffic"
        )
    lines += [
        "",
        "policy file snippet (MODERATION_POLICY_FILE):",
    ]
    for t in s.labels:
        lines += [
            f'[sites."{site_id}".thresholds.{t.label.value}]',
            f"approve_below = {t.review_at}",
            f"reject_at = {t.reject_at}",
        ]
    return "\n".join(lines) + "\n"
