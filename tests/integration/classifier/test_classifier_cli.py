"""The `python -m classifier` command-line contract, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _score(model: Path, stdin: bytes) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "classifier", "score", "--model", str(model)],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return proc.returncode, lines, proc.stderr.decode()


def test_scores_comment_events_in_order(tiny_model: Path) -> None:
    events = [
        {"id": "a", "site_id": "s1", "text": "Great article, thanks!", "author": {"url": None}},
        {"id": "b", "site_id": "s1", "text": "FREE iPhone!!! click http://bit.ly/x", "author": {}},
        {"id": "c", "text": "you are a pathetic 1d10t", "author": {"url": "http://me.example"}},
        {"text": "no id here"},
    ]
    stdin = "".join(json.dumps(e) + "\n" for e in events).encode()
    code, out, _ = _score(tiny_model, stdin)
    assert code == 0
    assert [o.get("id") for o in out] == ["a", "b", "c", None]
    for o in out:
        assert set(o) - {"id"} == {"spam", "abuse"}
        assert isinstance(o["spam"], float)
        assert isinstance(o["abuse"], float)
        assert 0.0 <= o["spam"] <= 1.0
        assert 0.0 <= o["abuse"] <= 1.0


def test_bad_lines_get_error_objects_and_nonzero_exit(tiny_model: Path) -> None:
    huge = json.dumps({"id": "huge", "text": "a" * 5_000_000}).encode()
    lines = [
        b'{"id": 1, "text": "fine"}',
        b"not json at all",
        b"\xff\xfe\x00garbage\x80",
        b"[1, 2, 3]",
        b'{"id": 5, "text": 42}',
        b"",
        huge,
        b'{"id": 8, "text": ""}',
    ]
    code, out, err = _score(tiny_model, b"\n".join(lines) + b"\n")
    assert code == 1
    assert "5 line(s) rejected" in err
    assert len(out) == len(lines)
    assert "spam" in out[0]
    assert "invalid JSON" in str(out[1]["error"])
    assert "UTF-8" in str(out[2]["error"])
    assert "object" in str(out[3]["error"])
    assert out[4] == {"id": 5, "error": "missing string field 'text'"}
    assert out[5] == {"error": "empty line"}
    assert out[6]["id"] == "huge"
    assert out[6]["truncated"] is True
    assert "spam" in out[6]
    assert out[7]["id"] == 8
    assert "abuse" in out[7]


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = _score(tmp_path / "absent", b'{"text": "hi"}\n')
    assert code == 2
    assert out == []
    assert "cannot load model" in err


@pytest.mark.parametrize("argv", [[], ["bogus"]])
def test_dispatcher_usage(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "classifier", *argv], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert b"usage" in proc.stdout + proc.stderr


def test_train_cli_writes_a_loadable_artifact(tmp_path: Path) -> None:
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "classifier", "train", "--out", str(out), "--max-per-source", "100"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    code, scored, _ = _score(out, b'{"text": "hello"}\n')
    assert code == 0
    assert len(scored) == 1
