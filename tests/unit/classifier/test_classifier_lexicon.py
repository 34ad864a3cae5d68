"""The pretrained lexicon re-derived from alt-profanity-check, and its use in the model."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import InconsistentVersionWarning

from classifier import ModelLoadError, load_model
from classifier.features import Featurizer, word_hashes
from classifier.lexicon import from_profanity_check
from classifier.model import ARTIFACT_FORMAT, METADATA_FILE, Model
from classifier.normalize import normalize

TEXTS = [
    "You are a worthless idiot and a piece of shit",
    "I think the council should reconsider the budget for the new library.",
    "",
    "what the fuck fuck FUCK is this",
    "Stop being such a moron, nobody cares about your stupid opinion",
    "Y0u 1d10t",
    "lovely weather today",
]


def test_reproduces_predict_prob_on_normalised_text() -> None:
    from profanity_check import predict_prob  # noqa: PLC0415

    lexicon = from_profanity_check()
    _, _, _, hashes = Featurizer().transform_parts(TEXTS)
    ours = lexicon.probabilities(hashes)
    theirs = predict_prob([normalize(t) for t in TEXTS])
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    assert ours[0] > 0.9
    assert ours[1] < 0.1


def test_obfuscation_does_not_change_the_lexicon_score() -> None:
    lexicon = from_profanity_check()
    _, _, _, hashes = Featurizer().transform_parts(
        ["you idiot", "Y0u 1d10t", "you i d i o t", "y\u043eu \u0456d\u0456\u043et", "you idiiiiot"]
    )
    logits = lexicon.logit(hashes)
    np.testing.assert_allclose(logits, logits[0], atol=1e-9)


def test_pickles_from_another_sklearn_version_are_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The package's pickles are loaded with InconsistentVersionWarning as an error."""
    monkeypatch.setattr("sklearn.base.__version__", "1.0.0")
    for name in ("profanity_check", "profanity_check.profanity_check"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(InconsistentVersionWarning):
        from_profanity_check()


def test_word_hashes_rejects_phrases() -> None:
    assert word_hashes(["idiot"]).shape == (1,)
    with pytest.raises(ValueError, match="one word"):
        word_hashes(["two words"])


def test_model_mixes_in_the_lexicon(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    params = model.params
    assert params.lexicon is not None
    assert params.lexicon_weight is not None
    spam_col, abuse_col = params.labels.index("spam"), params.labels.index("abuse")
    assert params.lexicon_weight[spam_col] == 0.0
    assert params.lexicon_weight[abuse_col] > 0.0
    # Without the lexicon, spam is unchanged and abuse differs.
    plain = Model(
        dataclasses.replace(
            params, lexicon=None, lexicon_weight=None, mix_slope=None, mix_offset=None
        ),
        model.metadata,
    )
    with_lex = model.probabilities(TEXTS)
    without = plain.probabilities(TEXTS)
    np.testing.assert_allclose(with_lex[:, spam_col], without[:, spam_col], rtol=1e-12)
    assert not np.allclose(with_lex[:, abuse_col], without[:, abuse_col])


def test_refuses_inconsistent_lexicon(tiny_model: Path) -> None:
    params = load_model(tiny_model).params
    with pytest.raises(ModelLoadError, match="without a lexicon"):
        dataclasses.replace(params, lexicon=None).validate()
    with pytest.raises(ModelLoadError, match="mix_slope"):
        dataclasses.replace(params, mix_slope=np.ones(3)).validate()
    assert params.lexicon is not None
    bad = dataclasses.replace(params.lexicon, idf=params.lexicon.idf[:-1])
    with pytest.raises(ModelLoadError, match="lexicon is malformed"):
        dataclasses.replace(params, lexicon=bad).validate()


@pytest.mark.parametrize("fmt", [ARTIFACT_FORMAT - 1, ARTIFACT_FORMAT + 1, None])
def test_refuses_other_artifact_formats(tiny_model: Path, tmp_path: Path, fmt: object) -> None:
    d = tmp_path / "m"
    shutil.copytree(tiny_model, d)
    meta = json.loads((d / METADATA_FILE).read_text())
    meta["format"] = fmt
    (d / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="artifact format"):
        load_model(d)
