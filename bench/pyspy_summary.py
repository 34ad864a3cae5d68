"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the samples go.

    python -m bench.pyspy_summary PROFILE [--top N] [--under FRAME ...] [--functions]

Prints, per thread, the share of samples, then the functions with the most samples on the
stack (inclusive) and at the top of it (self), over all threads that are not idle. With
`--under`, only the stacks with a frame that starts with one of the FRAMEs count (e.g. the
measured loop of a benchmark, not its start-up). `--functions` adds up the lines of each
function.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

IDLE = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--under", nargs="+", default=(), metavar="FRAME")
    parser.add_argument("--functions", action="store_true", help="one row a function")
    args = parser.parse_args(argv)
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if args.under and not any(f.startswith(tuple(args.under)) for f in frames):
            continue
        threads[frames[0]] += count
        total += count
        if any(frames[-1].startswith(idle) for idle in IDLE):
            continue
        if args.functions:  # "name (file.py:123)" -> "name (file.py)"
            frames = [f.rpartition(":")[0] + ")" if f.endswith(")") else f for f in frames]
        for frame in set(frames[1:]):
            inclusive[frame] += count
        own[frames[-1]] += count
    print(f"{total} samples")
    for thread, count in threads.most_common():
        print(f"  {count / total:6.1%}  {thread}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\ntop {args.top} {title} (share of all samples):")
        for frame, count in counter.most_common(args.top):
            print(f"  {count / total:6.1%}  {frame[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
