"""Helpers for tests that need a real (tiny) trained model."""

from __future__ import annotations

from pathlib import Path

from classifier.train import main as train_main

TINY_ROWS_PER_SOURCE = 300


def train_tiny_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Train a small but usable model into ``out_dir`` (a few seconds) and return it.

    Uses the bundled datasets, each subsampled to ``TINY_ROWS_PER_SOURCE`` rows.
    """
    code = train_main(
        ["--out", str(out_dir), "--max-per-source", str(TINY_ROWS_PER_SOURCE), "--seed", str(seed)]
    )
    if code != 0:
        raise RuntimeError(f"training the tiny model failed with exit status {code}")
    return out_dir
