"""The per-site learning curve: ``python -m classifier evaluate --adaptation``.

Each in-domain source (the news comments for abuse, each YouTube video's comment section for
spam) plays a new site: the shared model is trained without it (leave-one-source-out), then
given the first 0, 100, 250, 1,000 and 3,000 of its labels (in a seeded random order) as that
site's moderator labels, and scored on the rest of the source (the same rows at every size).
The site adjustment goes through the same guard as in production (:class:`SiteRule`), so a
size where it is refused scores exactly as the shared model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from classifier.data import NEWS_SOURCES, YOUTUBE_VIDEOS, Example
from classifier.labels import ABUSE, SPAM
from classifier.model import Model
from classifier.sites import OK, SiteLabel, SiteRule, adapt, fit_sites, split_held_back
from classifier.train import TrainConfig, train_params

__all__ = ["CURVE_SIZES", "CurvePoint", "adaptation_curve", "render_curve"]

CURVE_SIZES = (0, 100, 250, 1000, 3000)
POOL_SHARE = 0.6  # at most this share of a source is ever given as labels; the rest is scored
SITE = "new-site"


@dataclass(frozen=True, slots=True)
class CurvePoint:
    source: str
    label: str
    labels: int  # the site's labels given
    scored: int  # the rows it is scored on
    roc_auc: float
    gain: float  # against the shared model (0 labels)
    kept: bool  # the guard kept the adjustment


def in_domain_sources(
    examples: Sequence[Example], labels: Collection[str] = (ABUSE, SPAM)
) -> list[tuple[str, str]]:
    present = {(e.source, e.label) for e in examples}
    abuse = [(s, ABUSE) for s in sorted(NEWS_SOURCES) if (s, ABUSE) in present]
    spam = [(s, SPAM) for s in YOUTUBE_VIDEOS.values() if (s, SPAM) in present]
    return [(s, label) for s, label in abuse + spam if label in labels]


def adaptation_curve(
    examples: Sequence[Example],
    config: TrainConfig,
    seed: int,
    *,
    sizes: Sequence[int] = CURVE_SIZES,
    labels: Collection[str] = (ABUSE, SPAM),
    rule: SiteRule | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[CurvePoint]:
    """The curve of every in-domain source of ``labels``.

    ``examples`` must hold every label's rows: the shared model is trained on all of them
    (both heads need rows), whichever labels the curve is drawn for.
    """
    rule = rule or SiteRule()
    points = []
    for source, label in in_domain_sources(examples, labels):
        log(f"adaptation: {label} {source} as a new site")
        params, _ = train_params([e for e in examples if e.source != source], config, seed)
        model = Model(params, {"model_version": f"without-{source}"})
        rows = [e for e in examples if e.source == source and e.label == label]
        order = np.random.default_rng(seed).permutation(len(rows))
        rows = [rows[int(i)] for i in order]
        pool = min(max(sizes), int(len(rows) * POOL_SHARE))
        scored = rows[pool:]
        y = np.asarray([e.y for e in scored])
        texts = [e.text for e in scored]
        col = params.labels.index(label)
        general = [e for e in examples if e.test and e.source != source]
        shared = float(roc_auc_score(y, model.probabilities(texts)[:, col]))
        for n in sizes:
            if n > pool:
                continue
            auc, kept = shared, False
            if n:
                given = [SiteLabel(SITE, e.text, label if e.y else OK) for e in rows[:n]]
                train, held = split_held_back(given, rule.holdout_fraction)
                sites, outcomes = fit_sites(model, train, held, rule=rule, general=general)
                kept = any(o.kept and o.label == label for o in outcomes)
                if kept:
                    adapted = Model(adapt(model, sites), model.metadata)
                    p = adapted.probabilities(texts, site_ids=[SITE] * len(texts))[:, col]
                    auc = float(roc_auc_score(y, p))
            points.append(CurvePoint(source, label, n, len(scored), auc, auc - shared, kept))
    return points


def render_curve(points: Sequence[CurvePoint], sizes: Sequence[int] = CURVE_SIZES) -> str:
    header = f"{'label':6} {'site (held-out source)':24} {'scored':>7} " + " ".join(
        f"{n:>15}" for n in sizes
    )
    lines = [
        "Per-site adaptation: ROC-AUC on the rest of a source the shared model never saw, "
        "after N of its labels (gain against 0 labels; * = the guard refused the adjustment)",
        header,
    ]
    keys = list(dict.fromkeys((p.label, p.source) for p in points))
    for label, source in keys:
        mine = {p.labels: p for p in points if (p.label, p.source) == (label, source)}
        cells = []
        for n in sizes:
            p = mine.get(n)
            if p is None:
                cells.append(f"{'-':>15}")
            elif n == 0:
                cells.append(f"{p.roc_auc:15.4f}")
            else:
                mark = "" if p.kept else "*"
                cells.append(f"{p.roc_auc:.4f} {p.gain:+.4f}{mark:1}".rjust(15))
        scored = next(iter(mine.values())).scored
        lines.append(f"{label:6} {source:24} {scored:7} " + " ".join(cells))
    for n in sizes[1:]:
        gains = [p.gain for p in points if p.labels == n]
        if gains:
            lines.append(
                f"after {n} labels: mean gain {np.mean(gains):+.4f} over {len(gains)} sites, "
                f"worst {min(gains):+.4f}"
            )
    return "\n".join(lines) + "\n"
