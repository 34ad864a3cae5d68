"""Promotion on disk and the hot swap's watcher (artifacts faked by their model.json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import classifier
from service.adapters.model_registry import (
    ModelNotKept,
    ModelWatcher,
    kept_versions,
    live_version,
    promote,
    rollback,
    versions_dir,
)
from service.usecases.ports import Classifier
from tests.fakes import KeywordClassifier


def artifact(where: Path, version: str) -> Path:
    where.mkdir(parents=True)
    (where / "model.json").write_text(json.dumps({"model_version": version}))
    return where


def test_the_first_promotion_keeps_the_plain_artifact_as_a_version(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")

    where = promote(live, artifact(tmp_path / "staged", "v2"), "v2")

    assert live.is_symlink()
    assert live_version(live) == "v2"
    assert where == versions_dir(live) / "v2"
    assert live_version(versions_dir(live) / "v1") == "v1"  # for rollback
    assert not (tmp_path / "staged").exists()


def test_later_promotions_swap_the_link_and_refuse_an_existing_version(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")

    promote(live, artifact(tmp_path / "s3", "v3"), "v3")

    assert live_version(live) == "v3"
    assert sorted(p.name for p in versions_dir(live).iterdir()) == ["v1", "v2", "v3"]
    assert not list(tmp_path.glob(".model.*.link"))
    # the same version again (after a rollback, say): the kept one is pointed at
    promote(live, artifact(tmp_path / "s4", "v2"), "v2")
    assert live_version(live) == "v2"
    assert not (tmp_path / "s4").exists()
    # a kept directory that does not hold its version is never overwritten
    (versions_dir(live) / "v9").mkdir()
    with pytest.raises(FileExistsError):
        promote(live, artifact(tmp_path / "s5", "v9"), "v9")
    assert live_version(live) == "v2"


def test_rollback_points_at_a_kept_version_or_names_the_kept_ones(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")
    with pytest.raises(ModelNotKept, match=r"kept versions: v1$"):
        rollback(live, "v0")
    assert live_version(live) == "v1"  # now kept as a version, still live
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")

    rollback(live, "v1")

    assert live_version(live) == "v1"
    assert kept_versions(live) == ["v1", "v2"]
    with pytest.raises(ModelNotKept, match="kept versions: v1, v2"):
        rollback(live, "v7")


def test_an_unreadable_artifact_has_no_version(tmp_path: Path) -> None:
    assert live_version(tmp_path / "missing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("{not json")
    assert live_version(tmp_path / "bad") is None


@dataclass
class Swaps:
    got: list[str]

    def __call__(self, model: Classifier) -> None:
        self.got.append(model.version)


def loader(broken: set[str]) -> Callable[[Path], Classifier]:
    def load(path: Path) -> Classifier:
        version = live_version(path)
        assert version is not None
        if version in broken:
            raise ValueError(f"{version} is corrupt")
        return KeywordClassifier(version=version)

    return load


async def test_the_watcher_swaps_in_a_new_version_once(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")
    swaps = Swaps([])
    watcher = ModelWatcher(live, KeywordClassifier(version="v1"), load=loader(set()), on_swap=swaps)

    assert not await watcher.check()
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")
    assert await watcher.check()
    assert not await watcher.check()

    assert swaps.got == ["v2"]
    assert watcher.current.version == "v2"


async def test_a_version_that_fails_to_load_leaves_the_running_model(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")
    swaps = Swaps([])
    watcher = ModelWatcher(
        live, KeywordClassifier(version="v1"), load=loader({"v2"}), on_swap=swaps
    )
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")

    assert not await watcher.check()
    assert watcher.current.version == "v1"
    promote(live, artifact(tmp_path / "s3", "v3"), "v3")  # a fixed version follows
    assert await watcher.check()
    assert swaps.got == ["v3"]


def test_training_over_a_promoted_model_replaces_the_link_and_keeps_the_versions(
    tmp_path: Path,
) -> None:
    from classifier.model import write_artifact  # noqa: PLC0415
    from tests.classifier_fixtures import train_tiny_model  # noqa: PLC0415

    trained = train_tiny_model(tmp_path / "trained")
    params = classifier.load_model(trained).params
    live = artifact(tmp_path / "model", "v1")
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")

    write_artifact(live, params, {"model_version": "v3"})

    assert not live.is_symlink()
    assert live_version(live) == "v3"
    assert sorted(p.name for p in versions_dir(live).iterdir()) == ["v1", "v2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model",
        "model.versions",
        "trained",
    ]


async def test_a_version_that_failed_is_tried_again_after_a_while(tmp_path: Path) -> None:
    live = artifact(tmp_path / "model", "v1")
    broken = {"v2"}
    swaps = Swaps([])
    watcher = ModelWatcher(
        live,
        KeywordClassifier(version="v1"),
        load=loader(broken),
        on_swap=swaps,
        retry_after_seconds=0.0,
    )
    promote(live, artifact(tmp_path / "s2", "v2"), "v2")
    assert not await watcher.check()

    broken.clear()  # e.g. the disk was full for a moment

    assert await watcher.check()
    assert swaps.got == ["v2"]
