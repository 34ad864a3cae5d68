"""`LearningStore` on SQL: reports and appeals, reporters' reliability, labels."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from service.adapters.sql.base import SqlBase
from service.adapters.sql.dialects import Tx
from service.adapters.sql.rows import (
    MAX_FLAGS,
    clean_text,
    from_ms_required,
    reasons_of,
    to_ms,
)
from service.domain.feedback import (
    Feedback,
    FeedbackKind,
    FeedbackOutcome,
    LabelledExample,
    NotRejected,
    ReasonSource,
    ReporterStats,
    TrainingLabel,
    UnknownComment,
)
from service.domain.model import (
    Action,
    ReasonCode,
)
from service.domain.review import ReviewStatus
from service.domain.spot_check import is_spot_check_round


class SqlLearning(SqlBase):
    async def apply_feedback(self, feedback: Feedback) -> FeedbackOutcome:
        reason = clean_text(feedback.reason[:2000]) or ""

        def apply() -> FeedbackOutcome:
            key = (feedback.site_id, feedback.comment_id)
            with self._db.transaction(write=True) as tx:
                row = tx.fetchone(
                    "SELECT status, COALESCE(decision, auto_action), flags, auto_action "
                    f"FROM comments WHERE site_id = ? AND comment_id = ?{self._db.for_update}",
                    key,
                )
                if row is None:
                    raise UnknownComment(*key)
                pending = row[0] == ReviewStatus.PENDING.value
                # a waiting spot check's automatic decision is published and stands
                spot = is_spot_check_round(Action(row[3]), (r.code for r in reasons_of(row[2])))
                action = Action.REVIEW if pending and not spot else Action(row[1])
                inserted = tx.execute(
                    "INSERT INTO feedback (kind, site_id, comment_id, actor_id, reason, "
                    "received_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        feedback.kind.value,
                        *key,
                        feedback.actor_id,
                        reason,
                        to_ms(feedback.at),
                    ),
                )
                if inserted == 0:
                    return FeedbackOutcome.DUPLICATE
                if feedback.kind is FeedbackKind.APPEAL and action is Action.APPROVE:
                    raise NotRejected(*key, action.value)  # rolls the insert back
                if feedback.kind is FeedbackKind.REPORT and action is Action.REJECT:
                    tx.execute(
                        "UPDATE feedback SET outcome = 'moot' WHERE kind = 'report' "
                        "AND site_id = ? AND comment_id = ? AND actor_id = ?",
                        (*key, feedback.actor_id),
                    )
                    return FeedbackOutcome.NOT_APPLICABLE
                weight = 0.0
                if feedback.kind is FeedbackKind.REPORT:
                    stats = self._reporter(tx, feedback.site_id, feedback.actor_id)
                    weight = stats.reliability
                    detail = (
                        f"reported by {feedback.actor_id} (upheld {stats.upheld} of "
                        f"{stats.upheld + stats.dismissed} earlier reports): {reason}"
                    )
                    code = ReasonCode.REPORTED
                else:
                    detail = f"appealed by the author: {reason}"
                    code = ReasonCode.APPEALED
                flag = {"code": code.value, "detail": detail[:2000]}
                if pending:
                    flags = [*json.loads(row[2] or "[]"), flag][-MAX_FLAGS:]
                    tx.execute(
                        "UPDATE comments SET flags = ?, report_weight = report_weight + ?, "
                        "reason_codes = CASE WHEN reason_codes LIKE ? THEN reason_codes "
                        "ELSE reason_codes || ? END WHERE site_id = ? AND comment_id = ?",
                        (json.dumps(flags), weight, f"%,{code.value},%", f"{code.value},", *key),
                    )
                    return FeedbackOutcome.MERGED
                tx.execute(
                    "UPDATE comments SET status = 'pending', queued_at_ms = ?, flags = ?, "
                    "report_weight = ?, reason_codes = reason_codes || ?, claimed_by = NULL, "
                    "claim_expires_at_ms = NULL, decision = NULL, decided_by = NULL, "
                    "decided_at_ms = NULL, decision_reason = NULL, note = NULL "
                    "WHERE site_id = ? AND comment_id = ?",
                    (to_ms(feedback.at), json.dumps([flag]), weight, f"{code.value},", *key),
                )
                self._audit(
                    tx,
                    actor=f"{feedback.kind.value}:{feedback.actor_id}",
                    action="requeue",
                    site_id=feedback.site_id,
                    comment_id=feedback.comment_id,
                    detail=f"{action.value} comment back in the queue: {detail}"[:2000],
                    now=feedback.at,
                )
                return FeedbackOutcome.QUEUED

        return await self._run(apply)

    def _reporter(self, tx: Tx, site_id: str, reporter_id: str) -> ReporterStats:
        row = tx.fetchone(
            "SELECT upheld, dismissed FROM reporters WHERE site_id = ? AND reporter_id = ?",
            (site_id, reporter_id),
        )
        upheld, dismissed = (int(row[0]), int(row[1])) if row else (0, 0)
        return ReporterStats(site_id, reporter_id, upheld, dismissed)

    async def reporter_stats(self, site_id: str, reporter_id: str) -> ReporterStats:
        def read() -> ReporterStats:
            with self._db.transaction(write=False) as tx:
                return self._reporter(tx, site_id, reporter_id)

        return await self._run(read)

    async def labels(
        self, *, site_id: str | None = None, latest_only: bool = True
    ) -> list[LabelledExample]:
        """Labelled examples, oldest first; with `latest_only`, one per comment (its last)."""

        def read() -> list[LabelledExample]:
            sql = (
                "SELECT site_id, comment_id, text, label, auto_action, final_action, "
                "overturned, labelled_by, labelled_at_ms, reason_source, id FROM labels"
            )
            params: list[Any] = []
            if site_id is not None:
                sql += " WHERE site_id = ?"
                params.append(site_id)
            sql += " ORDER BY labelled_at_ms, id"
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            examples = [
                LabelledExample(
                    site_id=r[0],
                    comment_id=r[1],
                    text=r[2],
                    label=TrainingLabel(r[3]),
                    auto_action=Action(r[4]),
                    final_action=Action(r[5]),
                    overturned=bool(r[6]),
                    labelled_by=r[7],
                    labelled_at=from_ms_required(r[8]),
                    reason_source=ReasonSource(r[9]),
                )
                for r in rows
            ]
            if not latest_only:
                return examples
            last = {(e.site_id, e.comment_id): e for e in examples}
            return sorted(last.values(), key=lambda e: e.labelled_at)

        return await self._run(read)

    async def add_label(self, example: LabelledExample) -> None:
        def add() -> None:
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    "INSERT INTO labels (site_id, comment_id, text, label, auto_action, "
                    "final_action, overturned, labelled_by, labelled_at_ms, reason_source) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        example.site_id,
                        example.comment_id,
                        clean_text(example.text) or "",
                        example.label.value,
                        example.auto_action.value,
                        example.final_action.value,
                        int(example.overturned),
                        example.labelled_by,
                        to_ms(example.labelled_at),
                        example.reason_source.value,
                    ),
                )

        await self._run(add)

    async def recent_texts(self, site_id: str, *, since: datetime, limit: int) -> list[str]:
        """The texts of a site's comments decided since then, newest first."""

        def read() -> list[str]:
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(
                    "SELECT text FROM comments WHERE site_id = ? "
                    "AND auto_decided_at_ms >= ? ORDER BY auto_decided_at_ms DESC LIMIT ?",
                    (site_id, to_ms(since), limit),
                )
            return [r[0] for r in rows]

        return await self._run(read)
