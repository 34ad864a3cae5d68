"""``python -m classifier score [--model PATH]``: JSON lines in, JSON lines out.

Contract (also in classifier/README.md):

* Every input line produces exactly one output line, in the same order.
* An input line is a JSON object with a string ``text``; the author's URL is taken
  from ``author.url`` (comment events) or ``author_url`` if present, and an optional
  string ``site_id`` (comment events have it) scores the line with that site's
  adjustment when the model has one.  Other fields are ignored, except ``id`` which is
  echoed back.
* Output for a good line: ``{"id": ..., "spam": p, "abuse": p}`` (``id`` only if the
  input had one; ``"truncated": true`` is added when the text was longer than the
  model looks at).
* Output for a bad line (not UTF-8, not JSON, not an object, no string ``text``):
  ``{"id": ..., "error": "<reason>"}``.  Processing continues, and the exit status is
  1 at the end if any line was bad, 0 otherwise.  A model that cannot be loaded is
  exit status 2 with the reason on stderr and nothing on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from classifier.model import Model, ModelLoadError, load_model
from classifier.train import DEFAULT_MODEL_ENV, default_model_dir

__all__ = ["main", "score_lines"]

BATCH_SIZE = 256
# A line longer than this is rejected before JSON parsing (the model only reads the
# first few thousand characters anyway, but an unbounded line would still cost memory).
MAX_LINE_BYTES = 16 * 1024 * 1024


class _BadLine(Exception):
    pass


def _decode(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise _BadLine(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine(f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not line.strip():
        raise _BadLine("empty line")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadLine(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise _BadLine("invalid JSON: nested too deeply") from exc
    if not isinstance(obj, dict):
        raise _BadLine(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _parse(raw: bytes) -> tuple[Any, str, str | None, str | None] | str:
    """Return (id, text, author_url, site_id) or an error message."""
    try:
        obj = _decode(raw)
    except _BadLine as exc:
        return str(exc)
    text = obj.get("text")
    if not isinstance(text, str):
        return "missing string field 'text'"
    author = obj.get("author")
    url = author.get("url") if isinstance(author, dict) else obj.get("author_url")
    site_id = obj.get("site_id")
    if site_id is not None and not isinstance(site_id, str):
        return "field 'site_id' must be a string"
    return obj.get("id"), text, url if isinstance(url, str) and url else None, site_id


def _batched(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line.rstrip(b"\r\n"))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_lines(model: Model, lines: Iterable[bytes], out: IO[str]) -> int:
    """Score ``lines``, write JSON results to ``out``; return the number of bad lines."""
    errors = 0
    for batch in _batched(lines, BATCH_SIZE):
        parsed = [_parse(b) for b in batch]
        good = [p for p in parsed if not isinstance(p, str)]
        scores = (
            model.score([g[1] for g in good], [g[2] for g in good], [g[3] for g in good])
            if good
            else []
        )
        it = iter(scores)
        for p, raw in zip(parsed, batch, strict=True):
            record: dict[str, Any] = {}
            if isinstance(p, str):
                errors += 1
                rid = _id_of(raw)
                if rid is not None:
                    record["id"] = rid
                record["error"] = p
            else:
                s = next(it)
                if p[0] is not None:
                    record["id"] = p[0]
                record["spam"] = round(s.spam, 6)
                record["abuse"] = round(s.abuse, 6)
                if len(p[1]) > model.max_chars:
                    record["truncated"] = True
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return errors


def _id_of(raw: bytes) -> Any:
    """Best-effort id of a rejected line, so callers can match errors to inputs."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classifier score",
        description="Score JSON lines from stdin; one JSON object per line on stdout.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"artifact directory (default ${DEFAULT_MODEL_ENV} or .state/model)",
    )
    args = parser.parse_args(argv)
    path = args.model if args.model is not None else default_model_dir()
    try:
        model = load_model(path)
    except ModelLoadError as exc:
        sys.stderr.write(f"score: cannot load model: {exc}\n")
        return 2
    errors = score_lines(model, sys.stdin.buffer, sys.stdout)
    if errors:
        sys.stderr.write(f"score: {errors} line(s) rejected\n")
        return 1
    return 0
