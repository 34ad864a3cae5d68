"""What a Perspective-style threshold means on our abuse score (the Perspective API's TOXICITY):
for each threshold, on the held-out test split of the news-comment sources, the share of
comments at or above it, the share of those that are abusive (precision), the share of the
abusive ones it catches (recall) and the share of the good ones it flags.

    python bench/score_scale.py [--model DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse

import classifier
from classifier.data import load_examples

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("civil_comments", "toxic_spans")  # comments on news sites
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--model", default=str(ROOT / ".state" / "model"))
    args = parser.parse_args(argv)
    model = classifier.load_model(Path(args.model))
    examples = load_examples()
    print(f"model {model.version}")
    print("| source (test split) | threshold | flagged | precision | recall | good flagged |")
    print("|---|---|---|---|---|---|")
    for source in SOURCES:
        rows = [e for e in examples if e.source == source and e.test and e.label == "abuse"]
        scores = [s.abuse for s in model.score([e.text for e in rows])]
        bad = sum(e.y for e in rows)
        good = len(rows) - bad
        for threshold in THRESHOLDS:
            hit = [e.y for e, s in zip(rows, scores, strict=True) if s >= threshold]
            caught = sum(hit)
            print(
                f"| {source} ({len(rows)}, {bad} abusive) | {threshold:.1f} | "
                f"{len(hit) / len(rows):.1%} | {caught / max(1, len(hit)):.1%} | "
                f"{caught / max(1, bad):.1%} | {(len(hit) - caught) / max(1, good):.1%} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
