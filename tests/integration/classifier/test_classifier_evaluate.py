"""`python -m classifier evaluate` end to end, on a small sample so it takes seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.data import ABUSE_SOURCES
from classifier.evaluate import PREVIOUS, SEEN_FOLD, SEEN_IN_SAMPLE, TFIDF
from classifier.evaluate import main as evaluate_main
from classifier.lexicon import PRETRAINED_ON


@pytest.mark.slow
def test_evaluate_prints_all_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "eval.json"
    code = evaluate_main(["--max-per-source", "150", "--json", str(out_json)])
    assert code == 0
    text = capsys.readouterr().out
    for heading in (
        "### spam: In-domain",
        "### abuse: In-domain",
        "### spam: Leave-one-source-out",
        "### abuse: Leave-one-source-out",
        "### Robustness",
    ):
        assert heading in text
    raw = json.loads(out_json.read_text())
    models = {(r["table"], r["label"], r["model"]) for r in raw["rows"]}
    assert ("loso", "abuse", "model") in models
    assert ("loso", "abuse", "nb-bow") in models
    assert ("loso", "abuse", "profanity-check") in models
    # The new model beside the previous shipped configuration and the plain TF-IDF LR,
    # on every table, every abuse source (Civil Comments included).
    for table in ("in-domain", "loso"):
        for label in ("spam", "abuse"):
            assert {(table, label, m) for m in ("model", PREVIOUS, TFIDF)} <= models
    abuse_loso = {
        (r["model"], r["source"])
        for r in raw["rows"]
        if r["table"] == "loso" and r["label"] == "abuse"
    }
    assert {(m, s) for m in ("model", PREVIOUS, TFIDF) for s in ABUSE_SOURCES} <= abuse_loso
    # One summary table: each model a column, Civil Comments in-domain ROC-AUC, recall at
    # 1 % FPR and ECE, and every held-out fold with its change against the previous model.
    assert "### abuse: news comments, against the previous model" in text
    summary = text.split("### abuse: news comments", 1)[1].split("\n\n", 2)[1]
    header, _, *lines = summary.splitlines()
    assert header == f"| | model | {PREVIOUS} | {TFIDF} | nb-bow | profanity-check |"
    firsts = [line.split(" | ")[0] for line in lines]
    assert firsts[:3] == [
        "| civil_comments in-domain (test split) ROC-AUC",
        "| civil_comments in-domain (test split) recall@1%FPR",
        "| civil_comments in-domain (test split) ECE",
    ]
    assert firsts[3:] == [f"| {s} held out (LOSO) ROC-AUC" for s in ABUSE_SOURCES]
    by_key = {
        (r["table"], r["model"], r["source"]): r for r in raw["rows"] if r["label"] == "abuse"
    }
    for line, source in zip(lines[3:], ABUSE_SOURCES, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        new, old = by_key["loso", "model", source], by_key["loso", PREVIOUS, source]
        assert cells[0] == f"{new['roc_auc']:.3f} ({new['roc_auc'] - old['roc_auc']:+.3f})"
        assert cells[1] == f"{old['roc_auc']:.3f}"
    assert "model: largest leave-one-source-out fall against previous" in text
    assert ("loso", "spam", "model") in models
    loso_spam = {r["source"] for r in raw["rows"] if r["table"] == "loso" and r["label"] == "spam"}
    assert {"youtube_psy", "youtube_katyperry", "youtube_lmfao", "youtube_eminem"} <= loso_spam
    for row in raw["rows"]:
        assert 0.0 <= row["roc_auc"] <= 1.0
        assert 0.0 <= row["ece"] <= 1.0
    assert {r["model"] for r in raw["robustness"]} >= {"model", "nb-bow"}
    # alt-profanity-check was trained on Davidson: its Davidson rows are in-sample and
    # left out of its mean; our model's Davidson fold is trained without the lexicon.
    assert "davidson" in PRETRAINED_ON
    loso = {(r["model"], r["source"]): r for r in raw["rows"] if r["table"] == "loso"}
    assert loso["profanity-check", "davidson"]["note"] == SEEN_IN_SAMPLE
    assert not loso["profanity-check", "davidson"]["counted"]
    assert loso["model", "davidson"]["note"] == SEEN_FOLD
    assert loso["model", "davidson"]["counted"]
    assert all(r["counted"] for k, r in loso.items() if k[1] != "davidson")
    assert "| **profanity-check** | **mean of the others** |" in text
    assert f"\u2020 {SEEN_FOLD}." in text


@pytest.mark.slow
def test_davidson_fold_is_the_model_without_the_lexicon(tmp_path: Path) -> None:
    def davidson_loso(*extra: str) -> dict[str, float]:
        out = tmp_path / f"eval{len(extra)}.json"
        argv = ["--max-per-source", "150", "--labels", "abuse", "--no-baselines", *extra]
        assert evaluate_main([*argv, "--json", str(out)]) == 0
        rows = json.loads(out.read_text())["rows"]
        return {
            r["source"]: r["roc_auc"]
            for r in rows
            if r["table"] == "loso" and r["model"] == "model"
        }

    shipped = davidson_loso()
    without = davidson_loso("--lexicon-weight-abuse", "0")
    assert shipped["davidson"] == without["davidson"]
    # The other folds do use the lexicon, so they differ.
    assert any(shipped[s] != without[s] for s in shipped if s != "davidson")


@pytest.mark.slow
def test_single_source_table_trains_each_source_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "eval.json"
    code = evaluate_main(
        ["--max-per-source", "400", "--labels", "spam", "--single-source", "--json", str(out_json)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "### spam: Single-source" in text
    raw = json.loads(out_json.read_text())
    single = [r for r in raw["rows"] if r["table"] == "single-source"]
    # Only trained models get the table; a pretrained baseline cannot be retrained.
    assert {r["model"] for r in single} == {"model", PREVIOUS, TFIDF, "nb-bow"}
    # Each row is the source's own test split, so it has the in-domain row's size.
    in_domain = {
        (r["model"], r["source"]): r["n"] for r in raw["rows"] if r["table"] == "in-domain"
    }
    assert single
    for row in single:
        assert row["n"] == in_domain[(row["model"], row["source"])]
        assert 0.5 < row["roc_auc"] <= 1.0


@pytest.mark.slow
def test_single_source_table_is_off_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "eval.json"
    code = evaluate_main(
        ["--max-per-source", "150", "--labels", "spam", "--no-baselines", "--json", str(out_json)]
    )
    assert code == 0
    assert "Single-source" not in capsys.readouterr().out
    raw = json.loads(out_json.read_text())
    assert all(r["table"] != "single-source" for r in raw["rows"])
