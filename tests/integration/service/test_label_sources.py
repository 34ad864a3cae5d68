"""Where each label's reason came from, in the review store (SQLite and PostgreSQL, through the
`database_url` fixture): decisions record it, and migration 4 marks the rejections labelled
before it as guessed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

import service.adapters.sql.rows as sql_rows
import service.adapters.sql.store as store_module
from service.adapters.sql.dialects import dialect_for
from service.adapters.sql.migrations import MIGRATIONS
from service.adapters.sql.store import SqlReviewStore
from service.domain.feedback import ReasonSource, TrainingLabel
from service.domain.model import Action, ModeratorReason
from service.domain.review import ModeratorDecision
from tests.integration.service.test_review_store import T0, draft, stored

SOURCE_VERSION = 4  # the migration that added labels.reason_source


async def test_a_label_records_whether_the_moderator_gave_its_reason(
    store: SqlReviewStore,
) -> None:
    # each comment's scores favour abuse: the labels must follow the moderator, not the model
    await store.record_decisions(
        [stored(cid, spam=0.2, abuse=0.8) for cid in ("spam", "abuse", "none", "fine")]
    )
    decisions = [
        ModeratorDecision("herald", "spam", Action.REJECT, ModeratorReason.SPAM, None, "alice"),
        ModeratorDecision("herald", "abuse", Action.REJECT, ModeratorReason.ABUSE, None, "alice"),
        ModeratorDecision(
            "herald", "none", Action.REJECT, ModeratorReason.OTHER, None, "alice", False
        ),
        ModeratorDecision("herald", "fine", Action.APPROVE, ModeratorReason.OK, None, "bob", False),
    ]
    for i, decision in enumerate(decisions):
        await store.decide(decision, draft(decision.comment_id), now=T0 + timedelta(minutes=i))

    labels = {e.comment_id: (e.label, e.reason_source) for e in await store.labels()}
    assert labels == {
        "spam": (TrainingLabel.SPAM, ReasonSource.MODERATOR),
        "abuse": (TrainingLabel.ABUSE, ReasonSource.MODERATOR),
        "none": (TrainingLabel.OTHER, ReasonSource.GUESSED),  # nobody said why
        "fine": (TrainingLabel.OK, ReasonSource.MODERATOR),  # approving says ok by itself
    }


@dataclass(frozen=True, slots=True)
class LegacyDecision:
    """A decision as the store wrote it before migration 4 (no reason source)."""

    comment_id: str
    action: Action
    reason: ModeratorReason
    label: TrainingLabel
    at: datetime
    moderator: str = "moderator:alice"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# a comment row with the columns it had before migration 5 added sub_scores and language
_LEGACY_COMMENT_INSERT = (
    "INSERT INTO comments (site_id, comment_id, text, author_id, author_name, thread_id, "
    "created_at_ms, spam, abuse, risk, reasons, reason_codes, model_version, policy_version, "
    "auto_action, auto_decided_at_ms, event_json, status, queued_at_ms, text_hash, "
    "campaign_author) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LEGACY_COMMENT_COLUMNS = 21


def _write_legacy(url: str, decisions: Sequence[LegacyDecision]) -> None:
    """The comment row and label row each decision wrote before migration 4."""
    db = dialect_for(url)
    db.open()
    try:
        with db.transaction(write=True) as tx:
            for cid in sorted({d.comment_id for d in decisions}):
                row = sql_rows.comment_row(stored(cid))[:_LEGACY_COMMENT_COLUMNS]
                tx.execute(_LEGACY_COMMENT_INSERT, row)
            for d in decisions:
                tx.execute(
                    "UPDATE comments SET status = 'decided', decision = ?, decided_by = ?, "
                    "decided_at_ms = ?, decision_reason = ? WHERE site_id = ? AND comment_id = ?",
                    (
                        d.action.value,
                        d.moderator,
                        _ms(d.at),
                        d.reason.value,
                        "herald",
                        d.comment_id,
                    ),
                )
                tx.execute(
                    "INSERT INTO labels (site_id, comment_id, text, label, auto_action, "
                    "final_action, overturned, labelled_by, labelled_at_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        "herald",
                        d.comment_id,
                        f"text of {d.comment_id}",
                        d.label.value,
                        Action.REVIEW.value,
                        d.action.value,
                        0,
                        d.moderator,
                        _ms(d.at),
                    ),
                )
    finally:
        db.close()


async def legacy_store(
    url: str, monkeypatch: pytest.MonkeyPatch, decisions: Sequence[LegacyDecision]
) -> None:
    """A store migrated up to version 3 holding these decisions and their labels."""
    store = SqlReviewStore.from_url(url)
    try:
        with monkeypatch.context() as patch:
            older = tuple(m for m in MIGRATIONS if m[0] < SOURCE_VERSION)
            patch.setattr(store_module, "MIGRATIONS", older)
            await store.migrate()
        assert await store.schema_version() == SOURCE_VERSION - 1
    finally:
        await store.close()
    await asyncio.to_thread(_write_legacy, url, decisions)


def _minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


async def test_migration_4_marks_the_rejections_labelled_before_it_as_guessed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, a = Action.REJECT, Action.APPROVE
    await legacy_store(
        database_url,
        monkeypatch,
        [
            LegacyDecision("approved", a, ModeratorReason.OK, TrainingLabel.OK, _minutes(1)),
            # the page sent the model's belief: spam or abuse
            LegacyDecision("page-spam", r, ModeratorReason.SPAM, TrainingLabel.SPAM, _minutes(2)),
            LegacyDecision(
                "page-abuse", r, ModeratorReason.ABUSE, TrainingLabel.ABUSE, _minutes(3)
            ),
            # `other` was also the API's default for a rejection without a reason
            LegacyDecision("default", r, ModeratorReason.OTHER, TrainingLabel.OTHER, _minutes(4)),
            # neither the page nor the default ever sent these: a moderator chose them
            LegacyDecision(
                "off-topic", r, ModeratorReason.OFF_TOPIC, TrainingLabel.OTHER, _minutes(5)
            ),
            # ... but once re-decided, the comment no longer says what the first label's was
            LegacyDecision(
                "re-decided", r, ModeratorReason.PERSONAL_INFO, TrainingLabel.OTHER, _minutes(6)
            ),
            LegacyDecision("re-decided", a, ModeratorReason.OK, TrainingLabel.OK, _minutes(7)),
        ],
    )

    store = SqlReviewStore.from_url(database_url)
    try:
        await store.migrate()
        assert await store.schema_version() >= SOURCE_VERSION
        every = await store.labels(latest_only=False)
        # a decision after the migration records its own source
        await store.record_decisions([stored("after")])
        await store.decide(
            ModeratorDecision("herald", "after", r, ModeratorReason.SPAM, None, "alice"),
            draft("after"),
            now=_minutes(8),
        )
        [after] = [e for e in await store.labels() if e.comment_id == "after"]
    finally:
        await store.close()

    sources = [(e.comment_id, e.label, e.reason_source) for e in every]
    assert sources == [
        ("approved", TrainingLabel.OK, ReasonSource.MODERATOR),
        ("page-spam", TrainingLabel.SPAM, ReasonSource.GUESSED),
        ("page-abuse", TrainingLabel.ABUSE, ReasonSource.GUESSED),
        ("default", TrainingLabel.OTHER, ReasonSource.GUESSED),
        ("off-topic", TrainingLabel.OTHER, ReasonSource.MODERATOR),
        ("re-decided", TrainingLabel.OTHER, ReasonSource.GUESSED),
        ("re-decided", TrainingLabel.OK, ReasonSource.MODERATOR),
    ]
    assert (after.label, after.reason_source) == (TrainingLabel.SPAM, ReasonSource.MODERATOR)
