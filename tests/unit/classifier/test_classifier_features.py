from __future__ import annotations

import numpy as np
import pytest

from classifier import normalize
from classifier.features import DENSE_FEATURES, Featurizer
from classifier.obfuscate import TRICKS, obfuscate


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    return Featurizer()


def test_rows_do_not_depend_on_the_rest_of_the_batch(featurizer: Featurizer) -> None:
    texts = ["Check out my channel", "you idiot", "", "Ünïcödé \uff54\uff45\uff58 강남 🎉"]
    together = featurizer.transform(texts)
    for i, t in enumerate(texts):
        alone = featurizer.transform([t])
        diff = together[i] - alone
        assert abs(diff).sum() < 1e-6
    assert together.shape == (4, featurizer.n_features)


def test_blocks_match_the_stacked_matrix(featurizer: Featurizer) -> None:
    texts = ["hello world", "buy cheap pills at pills.example.com"]
    words, chars, dense = featurizer.transform_blocks(texts)
    stacked = featurizer.transform(texts).toarray()
    w, c = featurizer.word_features, featurizer.char_features
    np.testing.assert_allclose(stacked[:, :w], words.toarray())
    np.testing.assert_allclose(stacked[:, w : w + c], chars.toarray())
    np.testing.assert_allclose(stacked[:, w + c :], dense)


def test_same_words_share_columns(featurizer: Featurizer) -> None:
    words, _, _ = featurizer.transform_blocks(["idiot", "what an idiot", "idiot!"])
    cols = [set(words[i].indices.tolist()) for i in range(3)]
    assert cols[0] <= cols[1]
    assert cols[0] == cols[2]
    assert words[0].nnz == 1


def test_dense_features(featurizer: Featurizer) -> None:
    _, _, dense = featurizer.transform_blocks(
        ["HELLO THERE", "visit http://a.com and http://b.org", "plain"],
        author_urls=[None, "https://me.example", None],
    )
    col = {name: i for i, name in enumerate(DENSE_FEATURES)}
    assert dense[0, col["upper_share"]] > 0.9
    assert dense[2, col["upper_share"]] == 0.0
    assert dense[1, col["n_urls"]] == 1.0
    assert dense[1, col["author_url"]] == 1.0
    assert dense[0, col["author_url"]] == 0.0


def test_text_is_capped(featurizer: Featurizer) -> None:
    base = "word " * (featurizer.max_chars // 5)
    a = featurizer.transform([base[: featurizer.max_chars]])
    b = featurizer.transform([base + "different tail " * 100_000])
    assert abs(a - b).sum() < 1e-6


def test_author_urls_length_must_match(featurizer: Featurizer) -> None:
    with pytest.raises(ValueError, match="author_urls"):
        featurizer.transform(["a", "b"], author_urls=["x"])


def test_empty_batch(featurizer: Featurizer) -> None:
    assert featurizer.transform([]).shape == (0, featurizer.n_features)


@pytest.mark.parametrize("trick", TRICKS)
def test_normalize_undoes_each_obfuscation_trick(trick: object) -> None:
    rng = np.random.default_rng(0)
    for word in ("idiot", "stupid", "moron", "loser", "garbage"):
        assert callable(trick)
        assert normalize(trick(word, rng)) == word


def test_obfuscate_is_seeded_and_changes_text() -> None:
    text = "you are a stupid worthless idiot and a moron"
    a = obfuscate(text, np.random.default_rng(1), rate=1.0)
    b = obfuscate(text, np.random.default_rng(1), rate=1.0)
    assert a == b
    assert a != text
