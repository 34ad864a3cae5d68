"""Per-site adjustments: training with `--site-labels`, scoring with site ids, isolation between
sites, the guard, and the `score` command's `site_id`."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

from classifier import ABUSE, load_model
from classifier.data import DEFAULT_DATA_DIR, DataError, load_examples
from classifier.model import Model, write_artifact
from classifier.score_cli import score_lines
from classifier.sites import SiteLabel, SiteRule, adapt, fit_sites, read_site_labels
from classifier.sites import split_held_back as split
from classifier.train import main as train_main
from tests.classifier_fixtures import TINY_ROWS_PER_SOURCE
from tests.site_fixtures import house_rule_labels, probes, write_site_labels


def _labels(rows: list[dict[str, str]]) -> list[SiteLabel]:
    return [SiteLabel(r["site_id"], r["text"], r["label"]) for r in rows]


def _fit(model: Model, rows: list[dict[str, str]], **rule: float) -> Model:
    train, held = split(_labels(rows), 0.2)
    sites, _ = fit_sites(model, train, held, rule=SiteRule(**rule))  # type: ignore[arg-type]
    return Model(adapt(model, sites), model.metadata)


@pytest.fixture(scope="module")
def shared(tiny_model: Path) -> Model:
    return load_model(tiny_model)


@pytest.fixture(scope="module")
def site_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained with the herald's labels, through the command line."""
    root = tmp_path_factory.mktemp("site-model")
    labels = write_site_labels(root / "labels.jsonl", house_rule_labels("herald"))
    out = root / "model"
    code = train_main(
        [
            *("--out", str(out), "--max-per-source", str(TINY_ROWS_PER_SOURCE)),
            *("--site-labels", str(labels)),
        ]
    )
    assert code == 0
    return out


def _abuse(model: Model, texts: list[str], site: str | None) -> np.ndarray:
    return np.asarray([s.abuse for s in model.score(texts, site_ids=[site] * len(texts))])


def test_training_with_site_labels_learns_the_sites_house_rule(
    site_model: Path, shared: Model
) -> None:
    model = load_model(site_model)
    fine, house = probes()

    assert model.sites == {"herald"}
    own = _abuse(model, house, "herald") - _abuse(model, fine, "herald")
    before = _abuse(shared, house, None) - _abuse(shared, fine, None)
    # the herald's moderators call the word abuse: its comments with it now score far higher
    assert float(np.mean(own)) > float(np.mean(before)) + 0.2
    meta = model.metadata["sites"]["herald"]
    assert meta["adjusted"] is True
    assert meta["heads"][ABUSE]["kept"] is True
    assert meta["heads"][ABUSE]["held_back_auc_site"] > meta["heads"][ABUSE]["held_back_auc_shared"]
    assert meta["heads"]["spam"]["kept"] is False  # no spam labels: nothing to adjust
    assert model.version.startswith(shared.version + "-l")


def test_other_and_unknown_sites_keep_the_shared_scores_exactly(
    site_model: Path, shared: Model
) -> None:
    model = load_model(site_model)
    fine, house = probes()
    texts = fine + house
    expected = shared.score(texts)

    assert model.score(texts) == expected
    assert model.score(texts, site_ids=["gazette"] * len(texts)) == expected
    assert model.score(texts, site_ids=[None] * len(texts)) == expected
    # one batch mixing sites: only the herald's rows move
    mixed = ["herald" if i % 2 else "gazette" for i in range(len(texts))]
    got = model.score(texts, site_ids=mixed)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert (g == e) is (mixed[i] == "gazette")
    # sub-scores are the shared model's even for the herald
    assert [g.threat for g in got] == [e.threat for e in expected]


def test_one_sites_labels_never_change_another_sites_scores(shared: Model) -> None:
    herald = house_rule_labels("herald")
    # the gazette's moderators have the same house rule, on other comments
    gazette = [{**r, "site_id": "gazette"} for r in house_rule_labels("gazette", seed=3)]
    fine, house = probes()
    texts = fine + house

    alone = _fit(shared, herald)
    both = _fit(shared, herald + gazette)
    changed = _fit(shared, herald + [{**r, "label": "ok"} for r in gazette][:60] + gazette[60:])

    assert alone.sites == {"herald"}
    assert both.sites == {"gazette", "herald"}
    herald_scores = alone.score(texts, site_ids=["herald"] * len(texts))
    assert both.score(texts, site_ids=["herald"] * len(texts)) == herald_scores
    assert changed.score(texts, site_ids=["herald"] * len(texts)) == herald_scores
    assert alone.score(texts, site_ids=["gazette"] * len(texts)) == shared.score(texts)


def test_an_adjustment_is_refused_without_enough_labels(shared: Model) -> None:
    few = house_rule_labels("herald", abusive=20, fine=20)
    train, held = split(_labels(few), 0.2)

    sites, outcomes = fit_sites(shared, train, held)

    assert sites == {}
    [abuse] = [o for o in outcomes if o.label == ABUSE]
    assert not abuse.kept
    assert "needs 50 with 10 of each" in abuse.reason


def test_an_adjustment_learnt_from_noise_is_refused(shared: Model) -> None:
    # labels that are noise: whatever the adjustment learns does not rank the newest ones
    rows = house_rule_labels("herald", abusive=100, fine=100)
    rng = random.Random(5)
    noisy = [{**r, "label": rng.choice(["abuse", "ok"])} for r in rows]
    train, held = split(_labels(noisy), 0.2)

    sites, outcomes = fit_sites(shared, train, held)

    [abuse] = [o for o in outcomes if o.label == ABUSE]
    assert not abuse.kept
    assert abuse.site_auc is not None
    assert abuse.site_auc < 0.6
    assert "look like noise" in abuse.reason or "no better" in abuse.reason
    assert sites == {}


def test_labels_that_contradict_what_abuse_is_are_refused(shared: Model) -> None:
    examples = load_examples(DEFAULT_DATA_DIR, max_per_source=TINY_ROWS_PER_SOURCE)
    rows = [e for e in examples if e.label == ABUSE and not e.test]
    # every abusive comment marked ok and every fine one abuse: a corrupted label export
    flipped = [SiteLabel("herald", e.text, "ok" if e.y else ABUSE) for e in rows]
    random.Random(1).shuffle(flipped)
    train, held = split(flipped, 0.2)

    sites, outcomes = fit_sites(shared, train, held, general=examples)

    [abuse] = [o for o in outcomes if o.label == ABUSE]
    assert not abuse.kept
    assert "no better on the site's held-back labels" in abuse.reason or (
        "the labels contradict what abuse is" in abuse.reason
    )
    assert sites == {}


def test_site_labels_files_are_checked_line_by_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"site_id": "herald", "text": "fine", "label": "ok"}\n\n'
        '{"site_id": "herald", "text": "buy now", "label": "spam", "extra": 1}\n'
    )
    assert read_site_labels(good) == [
        SiteLabel("herald", "fine", "ok"),
        SiteLabel("herald", "buy now", "spam"),
    ]
    for line, message in [
        ("not json", "invalid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"text": "x", "label": "ok"}', "site_id must be a non-empty string"),
        ('{"site_id": "h", "label": "ok"}', "text must be a string"),
        ('{"site_id": "h", "text": "x", "label": "toxic"}', "label must be one of ok, spam"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"site_id": "h", "text": "x", "label": "ok"}\n' + line + "\n")
        with pytest.raises(DataError, match=rf"bad.jsonl:2: {message}"):
            read_site_labels(bad)


def test_train_reports_a_bad_site_labels_file(tmp_path: Path) -> None:
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"site_id": "h", "text": "x", "label": "rude"}\n')
    code = train_main(
        ["--out", str(tmp_path / "m"), "--max-per-source", "50", "--site-labels", str(bad)]
    )
    assert code == 2
    assert not (tmp_path / "m").exists()


def test_the_score_command_applies_the_site_named_on_each_line(site_model: Path) -> None:
    model = load_model(site_model)
    _, [house] = probes(1)
    sites = ["herald", "gazette", None]
    lines = [
        json.dumps({"id": i, "text": house, "site_id": site}).encode()
        for i, site in enumerate(sites)
    ] + [json.dumps({"id": 9, "text": "x", "site_id": 7}).encode()]
    out = io.StringIO()

    errors = score_lines(model, lines, out)

    got = [json.loads(line) for line in out.getvalue().splitlines()]
    expected = model.score([house] * 3, site_ids=sites)
    assert [g.get("abuse") for g in got[:3]] == [round(s.abuse, 6) for s in expected]
    assert got[0]["abuse"] > got[1]["abuse"]
    assert got[1]["abuse"] == got[2]["abuse"]
    assert got[3] == {"id": 9, "error": "field 'site_id' must be a string"}
    assert errors == 1


def test_site_adjustments_survive_the_artifact_round_trip(site_model: Path, tmp_path: Path) -> None:
    model = load_model(site_model)
    again = load_model(write_artifact(tmp_path / "copy", model.params, model.metadata))
    _, house = probes(10)
    sites = ["herald"] * len(house)
    assert again.score(house, site_ids=sites) == model.score(house, site_ids=sites)
    with pytest.raises(ValueError, match="site_ids must be as long as texts"):
        model.score(house, site_ids=["herald"])
