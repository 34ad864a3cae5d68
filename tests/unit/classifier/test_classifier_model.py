"""Training on a small sample, the artifact round trip, and load-time refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest

import classifier
import classifier.data
from classifier import LABELS, ModelLoadError, Scores, load_model
from classifier.model import METADATA_FILE, MODEL_FILE, ModelParams, write_artifact
from classifier.train import SCORING_MODULES, code_fingerprint, model_version
from classifier.train import main as train_main


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_meta(model_dir: Path, **changes: object) -> None:
    meta_path = model_dir / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))


def test_artifact_has_the_documented_metadata(tiny_model: Path) -> None:
    meta = json.loads((tiny_model / METADATA_FILE).read_text())
    assert meta["labels"] == ["spam", "abuse"]
    assert meta["model_version"]
    assert len(meta["data_sha256"]) == 64
    import sklearn  # noqa: PLC0415

    assert meta["sklearn_version"] == sklearn.__version__
    for label in LABELS:
        t = meta["suggested_thresholds"][label]
        assert 0.0 <= t["review"] <= t["block"] <= 1.0
        assert meta["metrics"]["test_split"][label]


def test_round_trip_scores_calibrated_probabilities(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    assert model.version == model.metadata["model_version"]
    texts = [
        "Check out my channel!!! subscribe http://bit.ly/free-money win a FREE iphone",
        "You are a worthless idiot, go kill yourself",
        "I think the council should reconsider the budget for the new library.",
    ]
    scores = model.score(texts, author_urls=[None, None, "https://example.org"])
    assert len(scores) == 3
    assert all(isinstance(s, Scores) for s in scores)
    for s in scores:
        assert 0.0 <= s.spam <= 1.0
        assert 0.0 <= s.abuse <= 1.0
    spammy, abusive, civil = scores
    assert spammy.spam > civil.spam
    assert abusive.abuse > civil.abuse
    assert spammy.spam > 0.5 > civil.spam
    # Same input, same output; order is preserved in a larger batch.
    again = model.score(list(reversed(texts)))
    assert again == list(reversed(model.score(texts)))


def test_scores_is_a_frozen_slots_dataclass() -> None:
    s = Scores(spam=0.1, abuse=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.spam = 0.5  # type: ignore[misc]
    assert not hasattr(s, "__dict__")


def test_fast_scoring_matches_sklearn_calibration(tiny_model: Path) -> None:
    """The stored sigmoid reproduces CalibratedClassifierCV's probabilities."""
    from classifier.data import load_examples  # noqa: PLC0415
    from classifier.features import Featurizer  # noqa: PLC0415
    from classifier.train import fit_head, train_rows  # noqa: PLC0415

    rows = train_rows(load_examples(max_per_source=150), "spam")
    x = Featurizer().transform([e.text for e in rows])
    y = np.asarray([e.y for e in rows])
    head, cal = fit_head(x, y, [e.source for e in rows], c=1.0, seed=0)
    probs = head.probabilities(x)
    assert probs.shape == (len(rows),)
    assert np.all((probs >= 0) & (probs <= 1))
    # The stored slope/offset reproduce scikit-learn's own fitted sigmoid calibrator.
    decision = np.asarray(x @ head.coef) + head.intercept
    np.testing.assert_allclose(probs, head.calibrator.predict(decision), rtol=1e-9)
    assert cal.shape[1] == 3
    assert float(np.mean((probs > 0.5) == (y == 1))) > 0.8


def test_empty_batch_and_edge_texts(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    assert model.score([]) == []
    huge = "spam " * 1_000_000  # 5 MB
    garbage = bytes(range(256)).decode("latin-1") * 50 + "\udc80"
    out = model.score(["", huge, garbage, "\x00"])
    assert len(out) == 4
    assert all(math.isfinite(s.spam) and math.isfinite(s.abuse) for s in out)


def test_huge_text_costs_no_more_than_its_prefix(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    prefix = "you are such an idiot " * 100
    [a] = model.score([prefix[: model.max_chars]])
    [b] = model.score([prefix + "x" * 5_000_000])
    assert a == b


def test_texts_normalised_by_the_caller_score_as_the_raw_texts(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    texts = [
        "BUY cheap pills at www.pills.example NOW!!!",
        "You are an  I D I O T",
        "Thanks, a very fair article.",
        "",
        "click here " * 200,  # longer than max_chars: cut first, then normalised, as without
    ]
    assert len(texts[-1]) > model.max_chars
    normalized = [classifier.normalize(t) for t in texts]

    assert model.score(texts, normalized=normalized) == model.score(texts)


def test_a_given_normalised_text_is_what_the_features_are_made_of(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    featurizer = model.params.featurizer
    long = "thanks for the article " * 100
    spam = classifier.normalize("buy cheap pills buy now buy")

    # the word and character blocks of a text that fits come from the given form
    given = featurizer.transform_parts(["hello"], normalized=[spam])
    own = featurizer.transform_parts([spam])
    assert (given[0] != own[0]).nnz == 0
    assert (given[1] != own[1]).nnz == 0
    # a longer one is normalised from its own prefix, as without it
    cut = featurizer.transform_parts([long], normalized=[spam])
    plain = featurizer.transform_parts([long])
    assert (cut[0] != plain[0]).nnz == 0
    assert (cut[1] != plain[1]).nnz == 0
    assert model.score([long], normalized=[spam]) == model.score([long])
    with pytest.raises(ValueError, match="normalized"):
        model.score(["a", "b"], normalized=["a"])


def test_rejects_bad_arguments(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    with pytest.raises(TypeError):
        model.score("not a list")
    with pytest.raises(TypeError):
        model.score([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="author_urls"):
        model.score(["a", "b"], author_urls=[None])


def test_refuses_other_sklearn_version(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path / "m")
    _rewrite_meta(d, sklearn_version="0.24.2")
    with pytest.raises(ModelLoadError, match=r"scikit-learn 0\.24\.2"):
        load_model(d)


def test_refuses_pickle_from_other_sklearn_version(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if model.json claims the right version, sklearn's own stamp is not silenced."""
    params: ModelParams = load_model(tiny_model).params
    meta = json.loads((tiny_model / METADATA_FILE).read_text())
    # Estimators stamp sklearn.base.__version__ into their pickled state.
    monkeypatch.setattr("sklearn.base.__version__", "1.0.0")
    d = write_artifact(tmp_path / "m", params, meta)
    monkeypatch.undo()
    with pytest.raises(ModelLoadError, match=r"version 1\.0\.0"):
        load_model(d)


@pytest.mark.parametrize("labels", [["abuse", "spam"], ["spam"], None])
def test_refuses_wrong_labels(tiny_model: Path, tmp_path: Path, labels: object) -> None:
    d = _copy(tiny_model, tmp_path / "m")
    _rewrite_meta(d, labels=labels)
    with pytest.raises(ModelLoadError, match="labels"):
        load_model(d)


def test_refuses_corrupt_or_missing_files(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path / "m")
    blob = (d / MODEL_FILE).read_bytes()
    (d / MODEL_FILE).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(d)
    (d / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        load_model(d)
    (d / METADATA_FILE).unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(d)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_refuses_garbage_pickle_with_matching_hash(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path / "m")
    joblib.dump({"not": "a model"}, d / MODEL_FILE)
    import hashlib  # noqa: PLC0415

    _rewrite_meta(d, artifact_sha256=hashlib.sha256((d / MODEL_FILE).read_bytes()).hexdigest())
    with pytest.raises(ModelLoadError, match="not ModelParams"):
        load_model(d)


def test_training_is_deterministic_and_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = ["--out", str(out), "--max-per-source", "120", "--seed", "3"]
    assert train_main(args) == 0
    first = (out / MODEL_FILE).read_bytes()
    first_meta = json.loads((out / METADATA_FILE).read_text())
    assert train_main(args) == 0  # over an existing artifact
    assert (out / MODEL_FILE).read_bytes() == first
    second_meta = json.loads((out / METADATA_FILE).read_text())
    assert second_meta["model_version"] == first_meta["model_version"]
    # Nothing but the artifact is left behind in the parent directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in out.iterdir()) == [MODEL_FILE, METADATA_FILE]


def test_a_change_to_the_scoring_code_changes_the_model_version(tmp_path: Path) -> None:
    package = Path(classifier.__file__).parent
    copy = tmp_path / "classifier"
    copy.mkdir()
    for name in SCORING_MODULES:
        shutil.copy(package / name, copy / name)
    assert code_fingerprint(copy) == code_fingerprint()
    with (copy / "normalize.py").open("a") as f:
        f.write("\n# one more normalisation step\n")
    changed = code_fingerprint(copy)
    assert changed != code_fingerprint()
    data = "ab" * 32
    assert model_version(data, changed, 0, None) != model_version(data, code_fingerprint(), 0, None)
    assert model_version(data, changed, 0, 300).endswith("-s0-n300")


def test_the_artifact_records_the_code_it_was_trained_with(tmp_path: Path) -> None:
    out = tmp_path / "model"
    assert train_main(["--out", str(out), "--max-per-source", "60"]) == 0
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["code_sha256"] == code_fingerprint()
    assert f"-c{code_fingerprint()[:6]}-" in meta["model_version"]


def test_training_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train_main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_default_out_dir_follows_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classifier.train import default_model_dir  # noqa: PLC0415

    monkeypatch.setenv("MODERATION_MODEL_PATH", str(tmp_path / "x"))
    assert default_model_dir() == tmp_path / "x"
    monkeypatch.delenv("MODERATION_MODEL_PATH")
    assert default_model_dir() == Path(".state") / "model"


def test_abuse_subscores_are_probabilities_that_follow_the_rater_fractions(
    tiny_model: Path,
) -> None:
    model = load_model(tiny_model)
    assert model.has_subscores
    assert model.metadata["subscores"] == [
        "severe_toxicity",
        "insult",
        "threat",
        "identity_attack",
        "profanity",
    ]
    texts = ["I will find you and kill you", "Thanks for the thoughtful article on zoning."]
    threat, calm = model.score(texts)
    for s in (threat, calm):
        for name in model.metadata["subscores"]:
            value = getattr(s, name)
            assert isinstance(value, float)
            assert 0.0 <= value <= 1.0
    # On held-out news comments, insults the raters agreed on score above the rest.
    rows = [
        e
        for e in classifier.data.load_examples()
        if e.source == "civil_comments" and e.test and e.subscores is not None
    ]
    insulting = [e.text for e in rows if e.subscores is not None and e.subscores[1] >= 0.5]
    civil = [e.text for e in rows if e.subscores is not None and e.subscores[1] == 0.0]
    mean_insulting = float(np.mean([s.insult for s in model.score(insulting)]))
    mean_civil = float(np.mean([s.insult for s in model.score(civil)]))
    assert mean_insulting > mean_civil


def test_a_model_without_subscores_scores_them_as_none(tiny_model: Path, tmp_path: Path) -> None:
    params = joblib.load(tiny_model / MODEL_FILE)
    meta = json.loads((tiny_model / METADATA_FILE).read_text())
    bare = dataclasses.replace(params, sub_weights=None, sub_intercepts=None)
    out = write_artifact(tmp_path / "bare", bare, {"model_version": meta["model_version"]})
    [s] = load_model(out).score(["hello there"])
    assert s.threat is None
    assert s.insult is None
    with pytest.raises(ModelLoadError, match="come together"):
        dataclasses.replace(params, sub_intercepts=None).validate()


@pytest.mark.parametrize("older", [2, 3])
def test_refuses_an_artifact_of_an_older_format(
    tiny_model: Path, tmp_path: Path, older: int
) -> None:
    d = _copy(tiny_model, tmp_path / "m")
    _rewrite_meta(d, format=older)
    with pytest.raises(ModelLoadError, match=rf"artifact format {older}, expected 4: .* retrain"):
        load_model(d)
