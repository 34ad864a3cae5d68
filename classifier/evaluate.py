"""``python -m classifier evaluate``: honest numbers for the model and two baselines.

For each label it prints

1. **in-domain**: train on every source's training split, test on each source's test
   split;
2. **leave-one-source-out** (LOSO): train without one whole source, test on all of it
   (abuse: each dataset; spam: each YouTube video, trained on the other videos plus SMS,
   and SMS itself);
3. **robustness**: the pooled test positives rewritten by :mod:`classifier.obfuscate`;
   recall at the threshold that gives a 5 % false-positive rate on the clean pooled
   test negatives, before and after, and the share that survives;
4. with ``--single-source``, **single-source**: train on one source's own training
   split only, test on its test split.  This is a rough ceiling for what
   leave-one-source-out can reach on that source with the same features: if a source's
   own labels cannot be learnt above some ROC-AUC, other sources' labels will not
   teach more.

Metrics: ROC-AUC, PR-AUC (average precision), recall at 1 % FPR and expected
calibration error (10 bins).  Models: this package's model (``model``), a bag-of-words
multinomial naive Bayes (``nb-bow``) trained on the same rows, and for abuse the
pretrained ``alt-profanity-check`` package (``profanity-check``), if installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from classifier.adaptation import adaptation_curve, render_curve
from classifier.data import (
    ABUSE_SOURCES,
    CIVIL_SOURCE,
    DEFAULT_DATA_DIR,
    NEWS_HAM_SOURCE,
    SPAM_SOURCES,
    Example,
    OffensiveMapping,
    load_examples,
)
from classifier.features import Featurizer
from classifier.labels import ABUSE, LABELS, SPAM
from classifier.lexicon import PRETRAINED_ON, Lexicon, from_profanity_check
from classifier.metrics import binary_metrics, threshold_at_fpr
from classifier.obfuscate import obfuscate
from classifier.train import PREVIOUS_CONFIG, TrainConfig, fit_head, source_weights, train_rows

__all__ = ["main"]

ROBUSTNESS_FPR = 0.05
# The baseline models next to ``model`` (the configuration being evaluated).
PREVIOUS = "previous"  # the previous shipped configuration, train.PREVIOUS_CONFIG
TFIDF = "tfidf-lr"  # plain word + char TF-IDF logistic regression
# The largest fall of a leave-one-source-out ROC-AUC against the previous model that the
# summary accepts.
MAX_FOLD_FALL = 0.01
SEEN_IN_SAMPLE = "pretrained on this source: in-sample, left out of the mean"
SEEN_FOLD = "this fold is trained without the lexicon, which was pretrained on this source"
SEEN_IN_DOMAIN = "trained in part on this source's data (the lexicon, or profanity-check itself)"
Scorer = Callable[[Sequence[str]], np.ndarray]
Fitter = Callable[[Sequence[Example]], Scorer]


@dataclass(frozen=True, slots=True)
class Row:
    table: str
    label: str
    model: str
    source: str
    metrics: dict[str, float]
    # Why this row is not a plain score (a pretrained part has seen the source), if it is not.
    note: str = ""
    counted: bool = True  # False: in-sample, so left out of the table's mean


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    robustness: list[dict[str, Any]] = field(default_factory=list)


class FeatureCache:
    """Featurise each distinct text once per run (the featuriser is deterministic)."""

    def __init__(self, featurizer: Featurizer, lexicon: Lexicon | None = None) -> None:
        self._featurizer = featurizer
        self._lexicon = lexicon
        self._index: dict[str, int] = {}
        self._blocks: list[sp.csr_matrix] = []
        self._lex: list[np.ndarray] = []
        self._matrix: sp.csr_matrix | None = None

    def lex_logit(self, texts: Sequence[str]) -> np.ndarray | None:
        """The lexicon's log-odds for ``texts`` (``None`` without a lexicon)."""
        if self._lexicon is None:
            return None
        self(texts)
        lex = np.concatenate(self._lex)
        rows = np.fromiter((self._index[t] for t in texts), dtype=np.int64, count=len(texts))
        out: np.ndarray = lex[rows]
        return out

    def __call__(self, texts: Sequence[str]) -> sp.csr_matrix:
        missing = list(dict.fromkeys(t for t in texts if t not in self._index))
        if missing:
            start = len(self._index)
            for i, t in enumerate(missing):
                self._index[t] = start + i
            words, chars, dense, hashes = self._featurizer.transform_parts(missing)
            self._blocks.append(
                sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
            )
            if self._lexicon is not None:
                self._lex.append(self._lexicon.logit(hashes))
            self._matrix = None
        if self._matrix is None:
            self._matrix = sp.vstack(self._blocks, format="csr")
            self._blocks = [self._matrix]
        rows = np.fromiter((self._index[t] for t in texts), dtype=np.int64, count=len(texts))
        out: sp.csr_matrix = self._matrix[rows]
        return out


def _fit_model(config: TrainConfig, label: str, seed: int, cache: FeatureCache) -> Fitter:
    def fit(rows: Sequence[Example]) -> Scorer:
        x = cache([e.text for e in rows])
        y = np.asarray([e.y for e in rows])
        weight = config.lexicon_weight.get(label, 0.0)
        head, _ = fit_head(
            x,
            y,
            [e.source for e in rows],
            c=config.c[label],
            seed=seed,
            max_iter=config.max_iter,
            lex_logit=cache.lex_logit([e.text for e in rows]) if weight else None,
            lexicon_weight=weight,
            source_weight=config.source_weight,
            balance_classes=config.balance_classes,
        )
        return lambda texts: head.probabilities(
            cache(texts), cache.lex_logit(texts) if weight else None
        )

    return fit


def _fit_nb(rows: Sequence[Example]) -> Scorer:
    vec = CountVectorizer(lowercase=True, min_df=1)
    x = vec.fit_transform([e.text for e in rows])
    nb = MultinomialNB(alpha=1.0)
    ys = [e.y for e in rows]
    nb.fit(x, ys, sample_weight=source_weights([e.source for e in rows], ys))
    positive = int(np.flatnonzero(nb.classes_ == 1)[0])

    def score(texts: Sequence[str]) -> np.ndarray:
        out: np.ndarray = nb.predict_proba(vec.transform(texts))[:, positive]
        return out

    return score


def _fit_tfidf(rows: Sequence[Example]) -> Scorer:
    """The plain baseline: word 1-2-gram and char_wb 2-5-gram TF-IDF, one logistic
    regression, every row the same weight, no normalisation, no lexicon."""
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    texts = [e.text for e in rows]
    x = sp.hstack([word.fit_transform(texts), char.fit_transform(texts)], format="csr")
    lr = LogisticRegression(C=4.0, max_iter=1000, solver="liblinear")
    lr.fit(x, [e.y for e in rows])
    positive = int(np.flatnonzero(lr.classes_ == 1)[0])

    def score(texts: Sequence[str]) -> np.ndarray:
        x = sp.hstack([word.transform(texts), char.transform(texts)], format="csr")
        out: np.ndarray = lr.predict_proba(x)[:, positive]
        return out

    return score


def _profanity_check() -> Scorer | None:
    try:
        with warnings.catch_warnings():
            # A third-party baseline pickled with another scikit-learn; we only compare.
            warnings.simplefilter("ignore")
            from profanity_check import predict_prob  # noqa: PLC0415
    except ImportError:
        return None

    def score(texts: Sequence[str]) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(predict_prob(list(texts)), dtype=np.float64)

    return score


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return binary_metrics(y, p)


def _by_source(rows: Sequence[Example]) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = defaultdict(list)
    for e in rows:
        out[e.source].append(e)
    return out


def _evaluate_label(  # noqa: PLR0917 - internal helper with one call site
    examples: Sequence[Example],
    label: str,
    models: dict[str, Fitter | Scorer],
    pretrained: set[str],
    seed: int,
    report: Report,
    log: Callable[[str], None],
    *,
    single_source: bool = False,
    seen: Mapping[str, frozenset[str]] | None = None,
    unseen_fitters: Mapping[str, Fitter] | None = None,
) -> None:
    """Every table for ``label``.

    ``seen[name]`` lists the sources a pretrained part of model ``name`` was trained on.
    Their leave-one-source-out fold uses ``unseen_fitters[name]`` (the model without that
    part) when there is one; otherwise the row is in-sample, marked and left out of the
    mean.
    """
    seen = seen or {}
    unseen_fitters = unseen_fitters or {}
    sources = SPAM_SOURCES if label == SPAM else ABUSE_SOURCES
    train = train_rows(examples, label)
    test = [e for e in examples if e.label == label and e.test]
    test_by_source = _by_source(test)
    all_by_source = _by_source([e for e in examples if e.label == label])
    rng = np.random.default_rng(seed)
    pooled_y = np.asarray([e.y for e in test])
    obf_pos = [obfuscate(e.text, rng) for e in test if e.y == 1]
    for name, fitter in models.items():
        t0 = time.perf_counter()
        scorer: Scorer = fitter if name in pretrained else fitter(train)  # type: ignore[assignment,arg-type]
        for source in sources:
            rows = test_by_source[source]
            y = np.asarray([e.y for e in rows])
            note = SEEN_IN_DOMAIN if source in seen.get(name, ()) else ""
            report.rows.append(
                Row(
                    "in-domain",
                    label,
                    name,
                    source,
                    _metrics(y, scorer([e.text for e in rows])),
                    note,
                )
            )
        # Robustness on the pooled test positives.
        p_clean = scorer([e.text for e in test])
        thr = threshold_at_fpr(pooled_y, p_clean, ROBUSTNESS_FPR)
        recall_clean = float(np.mean(p_clean[pooled_y == 1] > thr))
        p_obf = scorer(obf_pos)
        recall_obf = float(np.mean(p_obf > thr))
        report.robustness.append(
            {
                "label": label,
                "model": name,
                "threshold": thr,
                "recall_clean": recall_clean,
                "recall_obfuscated": recall_obf,
                "survival": recall_obf / recall_clean if recall_clean else 0.0,
            }
        )
        log(f"  {label} {name}: in-domain + robustness in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        for held_out in sources:
            rows = all_by_source[held_out]
            note, counted = "", True
            fold_fitter = fitter
            if held_out in seen.get(name, ()):
                if name in unseen_fitters:
                    fold_fitter, note = unseen_fitters[name], SEEN_FOLD
                else:
                    note, counted = SEEN_IN_SAMPLE, False
            if name in pretrained:
                held_scorer = scorer
            else:
                rest = [e for e in train if e.source != held_out]
                held_scorer = fold_fitter(rest)  # type: ignore[arg-type,assignment]
            y = np.asarray([e.y for e in rows])
            p = held_scorer([e.text for e in rows])
            report.rows.append(Row("loso", label, name, held_out, _metrics(y, p), note, counted))
        log(f"  {label} {name}: leave-one-source-out in {time.perf_counter() - t0:.1f}s")
        if single_source and name not in pretrained:
            t0 = time.perf_counter()
            _single_source(
                train,
                test_by_source,
                sources,
                label,
                name,
                fitter,  # type: ignore[arg-type]
                report,
                log,
                seen.get(name),
            )
            log(f"  {label} {name}: single-source in {time.perf_counter() - t0:.1f}s")


def _single_source(  # noqa: PLR0917 - internal helper with one call site
    train: Sequence[Example],
    test_by_source: dict[str, list[Example]],
    sources: Sequence[str],
    label: str,
    name: str,
    fitter: Fitter,
    report: Report,
    log: Callable[[str], None],
    seen: frozenset[str] | None = None,
) -> None:
    """Train on each source's own training rows only; test on its test split."""
    for source in sources:
        own = [e for e in train if e.source == source]
        rows = test_by_source[source]
        y = np.asarray([e.y for e in rows])
        if len({e.y for e in own}) < 2 or len(set(y.tolist())) < 2:
            log(f"  {label} {name}: single-source {source} skipped (one class only)")
            continue
        try:
            scorer = fitter(own)
        except ValueError as exc:  # too few rows to split off a calibration set
            log(f"  {label} {name}: single-source {source} skipped ({exc})")
            continue
        note = SEEN_IN_DOMAIN if seen and source in seen else ""
        report.rows.append(
            Row(
                "single-source",
                label,
                name,
                source,
                _metrics(y, scorer([e.text for e in rows])),
                note,
            )
        )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def render_summary(report: Report) -> list[str]:
    """The news-comment table: each model beside the previous one, abuse only.

    In-domain Civil Comments ROC-AUC, recall at 1 % FPR and ECE, then every
    leave-one-source-out fold, each with its change against :data:`PREVIOUS`.
    """
    rows = {
        (r.table, r.model, r.source): r
        for r in report.rows
        if r.label == ABUSE and r.table in {"in-domain", "loso"}
    }
    models = list(dict.fromkeys(m for _, m, _ in rows))
    if not models or ("in-domain", models[0], CIVIL_SOURCE) not in rows:
        return []
    lines: list[tuple[str, str, str]] = [
        ("in-domain", CIVIL_SOURCE, "roc_auc"),
        ("in-domain", CIVIL_SOURCE, "recall_at_1pct_fpr"),
        ("in-domain", CIVIL_SOURCE, "ece"),
        *(("loso", source, "roc_auc") for source in ABUSE_SOURCES),
    ]
    names = {"roc_auc": "ROC-AUC", "recall_at_1pct_fpr": "recall@1%FPR", "ece": "ECE"}
    out = [
        "### abuse: news comments, against the previous model",
        "",
        "| | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    falls: dict[str, float] = {}
    for table, source, key in lines:
        cells = []
        for model in models:
            row = rows.get((table, model, source))
            if row is None:
                cells.append("")
                continue
            value = row.metrics[key]
            cell = f"{value:.3f}"
            before = rows.get((table, PREVIOUS, source))
            if model != PREVIOUS and before is not None:
                delta = value - before.metrics[key]
                cell += f" ({delta:+.3f})"
                if table == "loso":
                    falls[model] = min(falls.get(model, 0.0), delta)
            cells.append(cell)
        where = "in-domain (test split)" if table == "in-domain" else "held out (LOSO)"
        out.append(f"| {source} {where} {names[key]} | " + " | ".join(cells) + " |")
    out.append("")
    for model, fall in falls.items():
        verdict = "within" if fall >= -MAX_FOLD_FALL else "BEYOND"
        out.append(
            f"{model}: largest leave-one-source-out fall against {PREVIOUS} "
            f"{-min(fall, 0.0):.3f}, {verdict} the {MAX_FOLD_FALL} limit."
        )
    out.append("")
    return out


def render(report: Report) -> str:
    """Markdown tables."""
    out: list[str] = render_summary(report)
    keys = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "ece")
    head = "| model | source | n (pos) | ROC-AUC | PR-AUC | recall@1%FPR | ECE |"
    sep = "|---|---|---|---|---|---|---|"
    for table, title in (
        ("in-domain", "In-domain (test splits)"),
        ("loso", "Leave-one-source-out (trained without the source, tested on all of it)"),
        (
            "single-source",
            "Single-source (trained on the source's own training split only, tested on its "
            "test split)",
        ),
    ):
        for label in LABELS:
            rows = [r for r in report.rows if r.table == table and r.label == label]
            if not rows:
                continue
            out += [f"### {label}: {title}", "", head, sep]
            models = list(dict.fromkeys(r.model for r in rows))
            notes = list(dict.fromkeys(r.note for r in rows if r.note))
            marks = {note: "\u2020" * (i + 1) for i, note in enumerate(notes)}
            for model in models:
                mrows = [r for r in rows if r.model == model]
                for r in mrows:
                    m = r.metrics
                    out.append(
                        f"| {model} | {r.source}{marks.get(r.note, '')} | "
                        f"{int(m['n'])} ({int(m['positives'])}) | "
                        + " | ".join(f"{m[k]:.3f}" for k in keys)
                        + " |"
                    )
                counted = [r for r in mrows if r.counted]
                means = [_mean([r.metrics[k] for r in counted]) for k in keys]
                mean_title = "mean" if len(counted) == len(mrows) else "mean of the others"
                out.append(
                    f"| **{model}** | **{mean_title}** | | "
                    + " | ".join(f"**{v:.3f}**" for v in means)
                    + " |"
                )
                videos = [r for r in counted if r.source.startswith("youtube")]
                if videos:
                    vmeans = [_mean([r.metrics[k] for r in videos]) for k in keys]
                    out.append(
                        f"| **{model}** | **mean of YouTube videos** | | "
                        + " | ".join(f"**{v:.3f}**" for v in vmeans)
                        + " |"
                    )
            out.append("")
            out += [f"{marks[note]} {note}." for note in notes]
            if notes:
                out.append("")
    out += [
        f"### Robustness (pooled test positives obfuscated; threshold at {ROBUSTNESS_FPR:.0%} "
        "FPR on clean test negatives)",
        "",
        "| label | model | threshold | recall clean | recall obfuscated | survival |",
        "|---|---|---|---|---|---|",
    ]
    for rob in report.robustness:
        out.append(
            f"| {rob['label']} | {rob['model']} | {rob['threshold']:.3f} | "
            f"{rob['recall_clean']:.3f} | {rob['recall_obfuscated']:.3f} | {rob['survival']:.1%} |"
        )
    out.append("")
    return "\n".join(out)


@dataclass(slots=True)
class Candidates:
    """The models evaluated for one label (see :func:`_evaluate_label`)."""

    fitters: dict[str, Fitter | Scorer] = field(default_factory=dict)
    pretrained: set[str] = field(default_factory=set)
    seen: dict[str, frozenset[str]] = field(default_factory=dict)
    unseen_fitters: dict[str, Fitter] = field(default_factory=dict)


def _candidates(
    config: TrainConfig,
    label: str,
    seed: int,
    cache: FeatureCache,
    profanity: Scorer | None,
    *,
    baselines: bool,
) -> Candidates:
    configs = {"model": config}
    if baselines:
        configs[PREVIOUS] = PREVIOUS_CONFIG
    out = Candidates()
    for name, cfg in configs.items():
        out.fitters[name] = _fit_model(cfg, label, seed, cache)
        if cfg.lexicon_weight.get(label, 0.0):
            # The lexicon has seen these sources: their held-out fold goes without it.
            out.seen[name] = PRETRAINED_ON
            without = replace(cfg, lexicon_weight={**cfg.lexicon_weight, label: 0.0})
            out.unseen_fitters[name] = _fit_model(without, label, seed, cache)
    if baselines:
        out.fitters[TFIDF] = _fit_tfidf
        out.fitters["nb-bow"] = _fit_nb
        if label == ABUSE and profanity is not None:
            out.fitters["profanity-check"] = profanity
            out.pretrained.add("profanity-check")
            out.seen["profanity-check"] = PRETRAINED_ON
    return out


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    """The shipped :class:`TrainConfig` with the experiment knobs of ``args`` applied."""
    config = TrainConfig()
    c = dict(config.c)
    if args.c_abuse is not None:
        c[ABUSE] = args.c_abuse
    if args.c_spam is not None:
        c[SPAM] = args.c_spam
    offensive = OffensiveMapping(args.offensive) if args.offensive else config.offensive
    lexicon_weight = dict(config.lexicon_weight)
    if args.lexicon_weight_abuse is not None:
        lexicon_weight[ABUSE] = args.lexicon_weight_abuse
    config = replace(config, c=c, offensive=offensive, lexicon_weight=lexicon_weight)
    if args.source_weight is not None:
        weights: dict[str, float] = {}
        for item in args.source_weight:
            source, sep, value = item.partition("=")
            try:
                weight = float(value)
            except ValueError:
                weight = float("nan")
            if not sep or source not in ABUSE_SOURCES + SPAM_SOURCES or not weight > 0:
                parser.error(
                    f"--source-weight {item!r}: expected SOURCE=W for a known source and W > 0"
                )
            weights[source] = weight
        config = replace(config, source_weight=weights)
    if args.balance_classes is not None:
        config = replace(config, balance_classes=args.balance_classes == "yes")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classifier evaluate",
        description="In-domain, leave-one-source-out and robustness tables, with baselines.",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-per-source", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write raw numbers here")
    parser.add_argument("--no-baselines", action="store_true", help="only evaluate the model")
    parser.add_argument("--labels", nargs="+", choices=LABELS, default=list(LABELS))
    parser.add_argument(
        "--single-source",
        action="store_true",
        help="also train on each source alone and test on its test split (a rough ceiling)",
    )
    # Knobs for experiments; the defaults are the shipped configuration.
    parser.add_argument("--c-abuse", type=float, default=None)
    parser.add_argument("--c-spam", type=float, default=None)
    parser.add_argument(
        "--lexicon-weight-abuse",
        type=float,
        default=None,
        help="weight of the pretrained lexicon for abuse (0 = off)",
    )
    parser.add_argument("--offensive", choices=[m.value for m in OffensiveMapping], default=None)
    parser.add_argument(
        "--source-weight",
        action="append",
        default=None,
        metavar="SOURCE=W",
        help="total weight of a source relative to the others (repeatable; replaces the "
        "configured weights)",
    )
    parser.add_argument(
        "--balance-classes",
        choices=["yes", "no"],
        default=None,
        help="give every (source, class) pair the same weight in fitting",
    )
    parser.add_argument(
        "--adaptation",
        action="store_true",
        help="also print the per-site learning curve (each in-domain source as a new site)",
    )
    args = parser.parse_args(argv)
    config = _config(args, parser)
    offensive = config.offensive

    def log(msg: str) -> None:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    started = time.perf_counter()
    examples = load_examples(
        args.data, max_per_source=args.max_per_source, seed=args.seed, offensive=offensive
    )
    examples = [e for e in examples if e.source != NEWS_HAM_SOURCE or SPAM in args.labels]
    report = Report()
    uses_lexicon = [config] if args.no_baselines else [config, PREVIOUS_CONFIG]
    lexicon = (
        from_profanity_check()
        if any(w for cfg in uses_lexicon for w in cfg.lexicon_weight.values())
        else None
    )
    cache = FeatureCache(config.featurizer, lexicon)
    profanity = None if args.no_baselines else _profanity_check()
    for label in args.labels:
        models = _candidates(
            config,
            label,
            args.seed,
            cache,
            profanity,
            baselines=not args.no_baselines,
        )
        _evaluate_label(
            examples,
            label,
            models.fitters,
            models.pretrained,
            args.seed,
            report,
            log,
            single_source=args.single_source,
            seen=models.seen,
            unseen_fitters=models.unseen_fitters,
        )
    sys.stdout.write(render(report))
    sys.stdout.write(
        f"\nconfig: C={config.c} lexicon_weight={config.lexicon_weight} "
        f"source_weight={config.source_weight} balance_classes={config.balance_classes} "
        f"davidson_offensive={offensive.value} seed={args.seed}; "
        f"total {time.perf_counter() - started:.0f}s\n"
    )
    curve = []
    if args.adaptation:
        curve = adaptation_curve(examples, config, args.seed, labels=args.labels, log=log)
        sys.stdout.write("\n" + render_curve(curve))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [
                        {
                            "table": r.table,
                            "label": r.label,
                            "model": r.model,
                            "source": r.source,
                            "note": r.note,
                            "counted": r.counted,
                            **r.metrics,
                        }
                        for r in report.rows
                    ],
                    "robustness": report.robustness,
                    "adaptation": [asdict(p) for p in curve],
                },
                indent=1,
            )
        )
    return 0
