"""`moderation retrain` and `moderation suggest-thresholds` as an operator runs them, over a
SQLite label store filled by moderator decisions."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.adapters.model_registry import live_version, versions_dir
from service.adapters.sql.store import SqlReviewStore
from service.domain.feedback import TrainingLabel
from service.domain.model import Action, ModeratorReason, Reason, ReasonCode, Scores
from service.domain.review import ModeratorDecision, OutboxDraft, StoredComment
from tests.integration.service.test_label_sources import LegacyDecision, legacy_store
from tests.learning_fixtures import FLIPPED, labelled_texts
from tests.site_fixtures import house_rule_labels

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 11, 1, tzinfo=UTC)

pytestmark = pytest.mark.slow


async def fill_label_store(url: str, labels: list[tuple[str, TrainingLabel]]) -> None:
    store = SqlReviewStore.from_url(url)
    await store.migrate()
    try:
        for i, (text, label) in enumerate(labels):
            at = T0 + timedelta(minutes=i)
            cid = f"c{i:03d}"
            await store.record_decisions(
                [
                    StoredComment(
                        "herald",
                        cid,
                        text,
                        f"a{i}",
                        None,
                        None,
                        at,
                        Scores(0.5, 0.5),
                        (Reason(ReasonCode.SPAM_UNCERTAIN, "between thresholds"),),
                        Action.REVIEW,
                        "m-1",
                        "p-1",
                        at,
                        "{}",
                    )
                ]
            )
            action = Action.APPROVE if label is TrainingLabel.OK else Action.REJECT
            await store.decide(
                ModeratorDecision("herald", cid, action, ModeratorReason(label.value), None, "m"),
                OutboxDraft(f"e{i}", "decisions", b"k", b"{}"),
                now=at + timedelta(seconds=30),
            )
    finally:
        await store.close()


def fill(url: str, labels: list[tuple[str, TrainingLabel]]) -> None:
    asyncio.run(fill_label_store(url, labels))


def run(command: list[str], tmp_path: Path, model: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODERATION_STATE_DIR": str(tmp_path),
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'moderation.db'}",
        "MODERATION_MODEL_PATH": str(model),
    }
    return subprocess.run(
        [sys.executable, "-m", "service", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def live_model(tiny_model: Path, tmp_path: Path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    return model


def test_a_corrupted_label_store_gives_a_worse_candidate_that_is_refused(
    live_model: Path, tmp_path: Path
) -> None:
    before = live_version(live_model)
    flipped = [(text, FLIPPED[label]) for text, label in labelled_texts()]
    fill(f"sqlite:///{tmp_path / 'moderation.db'}", flipped)

    done = run(["retrain"], tmp_path, live_model)

    assert done.returncode == 3, done.stderr
    assert "verdict: REFUSED" in done.stdout
    # the reason names what the adjustment got wrong
    assert "no site's adjustment was kept: herald spam:" in done.stdout
    assert "160 trained on, 40 held back" in done.stdout
    assert live_version(live_model) == before
    assert not live_model.is_symlink()
    assert not versions_dir(live_model).exists()

    # written as a candidate only (for shadow mode), it carries its verdict with it
    candidate = tmp_path / "candidate"
    kept = run(["retrain", "--candidate-out", str(candidate)], tmp_path, live_model)
    assert kept.returncode == 3
    assert f"MODERATION_SHADOW_MODEL_PATH={candidate}" in kept.stdout
    metadata = json.loads((candidate / "model.json").read_text())
    assert metadata["promotion"]["passed"] is False
    assert metadata["parent_version"] == before
    assert live_version(live_model) == before


def test_honest_labels_give_a_candidate_that_is_promoted_as_a_new_version(
    live_model: Path, tmp_path: Path
) -> None:
    before = live_version(live_model)
    house = [(r["text"], TrainingLabel(r["label"])) for r in house_rule_labels("herald")]
    fill(f"sqlite:///{tmp_path / 'moderation.db'}", house)

    done = run(["retrain"], tmp_path, live_model)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PROMOTED" in done.stdout
    assert "herald abuse: 160 trained on, 40 held back" in done.stdout
    assert "herald spam: 96 trained on" in done.stdout  # the ok ones: no spam to learn from
    assert done.stdout.count(": kept") == 1  # the abuse adjustment
    assert "rule: promote only if" in done.stdout
    after = live_version(live_model)
    assert after is not None
    assert before is not None
    assert after.startswith(before + "-l")
    assert live_model.is_symlink()
    assert live_version(versions_dir(live_model) / before) == before  # kept for rollback

    again = run(["retrain", "--dry-run"], tmp_path, live_model)  # nothing new to learn
    assert again.returncode == 0, again.stdout + again.stderr
    assert "not promoted" in again.stdout
    assert live_version(live_model) == after

    listed = run(["rollback"], tmp_path, live_model)
    assert listed.stdout.splitlines() == [f"  {before}", f"* {after}"]  # * marks the live one
    back = run(["rollback", before], tmp_path, live_model)
    assert back.returncode == 0, back.stderr
    assert live_version(live_model) == before
    missing = run(["rollback", "no-such-version"], tmp_path, live_model)
    assert missing.returncode == 2
    assert f"kept versions: {', '.join(sorted([before, after]))}" in missing.stderr
    # retraining on the same labels after the rollback promotes the kept version again
    forward = run(["retrain"], tmp_path, live_model)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert live_version(live_model) == after


def test_retraining_refuses_to_run_on_too_few_labels(live_model: Path, tmp_path: Path) -> None:
    fill(f"sqlite:///{tmp_path / 'moderation.db'}", labelled_texts(5, 5, 10))

    done = run(["retrain"], tmp_path, live_model)

    assert done.returncode == 2
    assert "20 usable labels" in done.stderr
    assert "at least 50" in done.stderr


def test_retraining_leaves_out_the_rejections_labelled_from_the_pages_guess(
    live_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a store from before migration 4: 70 labels, of which the 40 rejections took their
    # reason from the page's guess; `retrain` migrates it and learns only the 30 approvals
    legacy = [
        LegacyDecision(
            f"c{i:03d}",
            Action.APPROVE if label is TrainingLabel.OK else Action.REJECT,
            ModeratorReason(label.value),
            label,
            T0 + timedelta(minutes=i),
        )
        for i, (_, label) in enumerate(labelled_texts(20, 20, 30))
    ]
    asyncio.run(legacy_store(f"sqlite:///{tmp_path / 'moderation.db'}", monkeypatch, legacy))

    done = run(["retrain"], tmp_path, live_model)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "30 usable labels" in done.stderr
    assert "40 with a guessed reason left out" in done.stderr


def test_threshold_suggestions_print_thresholds_the_share_and_a_policy_snippet(
    live_model: Path, tmp_path: Path
) -> None:
    fill(f"sqlite:///{tmp_path / 'moderation.db'}", labelled_texts())

    done = run(
        ["suggest-thresholds", "--site", "herald", "--max-false-reject", "0.01"],
        tmp_path,
        live_model,
    )

    assert done.returncode == 0, done.stderr
    assert "90 comments labelled ok, 60 spam, 50 abuse" in done.stdout
    assert "at most 1.00% of good comments auto-rejected" in done.stdout
    assert "expected share needing a human:" in done.stdout
    assert '[sites."herald".thresholds.spam]' in done.stdout
    bad = run(["suggest-thresholds", "--site", "herald", "--max-miss", "2"], tmp_path, live_model)
    assert bad.returncode == 2
    assert "must be a share between 0 and 1" in bad.stderr
