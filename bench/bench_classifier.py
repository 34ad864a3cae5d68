"""Comments scored per second by one single-threaded process, by batch size.

    python bench/bench_classifier.py [--model PATH] [--seconds S]

Texts are real comments from the bundled data: the ToxicSpans news-site comments
(the product's domain, ~200 characters on average) and the YouTube comments, shuffled.
If no model exists at PATH one is trained there first.  BLAS/OpenMP thread pools are
limited to one thread, so the figure is "per core".
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - the thread settings must precede numpy's import
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # noqa: E402

from classifier import load_model  # noqa: E402
from classifier.data import DEFAULT_DATA_DIR, load_examples  # noqa: E402
from classifier.normalize import normalize  # noqa: E402
from classifier.train import default_model_dir  # noqa: E402
from classifier.train import main as train_main  # noqa: E402

BATCH_SIZES = (1, 32, 256, 1024)


def realistic_texts(data_dir: Path, seed: int = 0) -> list[str]:
    examples = load_examples(data_dir)
    texts = [
        e.text for e in examples if e.source == "toxic_spans" or e.source.startswith("youtube")
    ]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order]


def rate(
    fn: Callable[[Sequence[str]], object], texts: Sequence[str], batch: int, budget: float
) -> float:
    """Comments per second of ``fn`` over consecutive batches, for about ``budget`` s."""
    fn(texts[:batch])  # warm-up
    done = 0
    start = time.perf_counter()
    i = 0
    while True:
        chunk = texts[i : i + batch]
        if len(chunk) < batch:
            i = 0
            continue
        fn(chunk)
        done += batch
        i += batch
        elapsed = time.perf_counter() - start
        if elapsed >= budget and done >= batch:
            return done / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    model_dir: Path = args.model if args.model is not None else default_model_dir()
    if not (model_dir / "model.json").is_file():
        print(f"no model at {model_dir}; training one (full data) ...", flush=True)
        if train_main(["--out", str(model_dir), "--data", str(args.data)]) != 0:
            return 1
    model = load_model(model_dir)
    texts = realistic_texts(args.data)
    lengths = [len(t) for t in texts]
    print(f"model {model.version} from {model_dir}")
    print(
        f"{len(texts)} texts: mean {statistics.mean(lengths):.0f} chars, "
        f"median {statistics.median(lengths):.0f}, max {max(lengths)}; "
        f"model reads the first {model.max_chars}"
    )
    featurizer = model.params.featurizer
    with threadpool_limits(limits=1):
        print("\nstage costs at batch 256 (comments/s):")
        norm_rate = rate(
            lambda b: [normalize(t[: model.max_chars]) for t in b], texts, 256, args.seconds
        )
        feat_rate = rate(featurizer.transform, texts, 256, args.seconds)
        print(f"  normalise only        {norm_rate:>10,.0f}")
        print(f"  featurise (incl. norm){feat_rate:>10,.0f}")
        print("\nend-to-end model.score, one thread (comments/s):")
        results = {}
        for batch in BATCH_SIZES:
            results[batch] = rate(model.score, texts, batch, args.seconds)
            print(f"  batch {batch:>5}  {results[batch]:>10,.0f}")
        huge = ["x" * 5_000_000 + " you idiot"] * 8
        t0 = time.perf_counter()
        model.score(huge)
        per_huge = (time.perf_counter() - t0) / len(huge)
        print(f"\none 5 MB comment: {per_huge * 1000:.2f} ms", end=" ")
        print(f"(only the first {model.max_chars} chars are read)")
    best = max(results.values())
    target = 10_000
    verdict = "meets" if results[256] >= target else "misses"
    print(
        f"\nbatch 256: {results[256]:,.0f}/s per core, {verdict} the {target:,}/s target", end=" "
    )
    print(f"(best {best:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
