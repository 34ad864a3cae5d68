"""``python -m classifier evaluate`` (work in progress)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    del argv
    sys.stderr.write("evaluate: not implemented yet\n")
    return 2
