"""`DecisionLog` on SQL: the automatic decisions the pipeline records and the history its rules
read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from service.adapters.sql.base import SqlBase
from service.adapters.sql.rows import (
    INSERT_COMMENT,
    comment_row,
    from_ms_required,
    reason_code,
    row_language,
    scores_of,
    to_ms,
)
from service.domain.model import (
    Action,
    Decision,
    Reason,
)
from service.domain.review import (
    Activity,
    ActivityQuery,
    AuthorKey,
    AutoDecision,
    OutboxDraft,
    StoredComment,
)


class SqlDecisionLog(SqlBase):
    async def record_decisions(self, comments: Sequence[StoredComment]) -> None:
        if comments:
            await self._run(self._record, comments)

    def _record(self, comments: Sequence[StoredComment]) -> None:
        with self._db.transaction(write=True) as tx:
            tx.executemany(INSERT_COMMENT, [comment_row(c) for c in comments])

    async def record_one(self, comment: StoredComment, outbox: OutboxDraft) -> bool:
        def record() -> bool:
            with self._db.transaction(write=True) as tx:
                if tx.execute(INSERT_COMMENT, comment_row(comment)) == 0:
                    return False  # decided before: nothing to publish again
                tx.execute(
                    "INSERT INTO outbox (event_id, topic, key, value, created_at_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        outbox.event_id,
                        outbox.topic,
                        outbox.key,
                        outbox.value,
                        to_ms(comment.decided_at),
                    ),
                )
            return True

        return await self._run(record)

    async def auto_decision(self, site_id: str, comment_id: str) -> AutoDecision | None:
        def read() -> AutoDecision | None:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    "SELECT auto_action, spam, abuse, reasons, model_version, policy_version, "
                    "auto_decided_at_ms, sub_scores, language, language_detected "
                    "FROM comments WHERE site_id = ? AND comment_id = ?",
                    (site_id, comment_id),
                )
            if row is None:
                return None
            reasons = tuple(Reason(reason_code(r["code"]), r["detail"]) for r in json.loads(row[3]))
            decision = Decision(
                comment_id=comment_id,
                site_id=site_id,
                action=Action(row[0]),
                scores=scores_of(row[1], row[2], row[7]),
                reasons=reasons,
                model_version=row[4],
                policy_version=row[5],
                language=row_language(row[8], row[9]),
            )
            return AutoDecision(decision, from_ms_required(row[6]))

        return await self._run(read)

    async def activity(self, query: ActivityQuery) -> Activity:
        if not query.authors and not query.hashes and not query.statuses:
            return Activity()
        return await self._run(self._activity, query)

    def _activity(self, query: ActivityQuery) -> Activity:
        prior: dict[AuthorKey, int] = {}
        recent: dict[AuthorKey, list[datetime]] = {}
        texts: dict[str, list[tuple[str, datetime]]] = {}
        batch = set(query.exclude)
        with self._db.transaction(write=False) as tx:
            if query.authors:
                pairs = ", ".join("(?, ?)" for _ in query.authors)
                flat = [v for pair in query.authors for v in pair]
                for site, author, count in tx.fetchall(
                    "SELECT site_id, author_id, COUNT(*) FROM comments "
                    f"WHERE (site_id, author_id) IN (VALUES {pairs}) GROUP BY site_id, author_id",
                    flat,
                ):
                    prior[(site, author)] = int(count)
                if batch:  # a replayed batch is already stored: it is not its own history
                    marks = ", ".join("(?, ?)" for _ in batch)
                    for site, author in tx.fetchall(
                        "SELECT site_id, author_id FROM comments WHERE author_id IS NOT NULL "
                        f"AND (site_id, comment_id) IN (VALUES {marks})",
                        [v for pair in sorted(batch) for v in pair],
                    ):
                        prior[(site, author)] = prior.get((site, author), 1) - 1
                for site, author, comment_id, at in tx.fetchall(
                    "SELECT site_id, author_id, comment_id, auto_decided_at_ms FROM comments "
                    f"WHERE (site_id, author_id) IN (VALUES {pairs}) AND auto_decided_at_ms >= ?",
                    [*flat, to_ms(query.flood_since)],
                ):
                    if (site, comment_id) not in batch:
                        recent.setdefault((site, author), []).append(from_ms_required(at))
            if query.hashes:
                marks = ", ".join("?" * len(query.hashes))
                for digest, author, site, comment_id, at in tx.fetchall(
                    "SELECT text_hash, campaign_author, site_id, comment_id, auto_decided_at_ms "
                    f"FROM comments WHERE text_hash IN ({marks}) AND auto_decided_at_ms >= ?",
                    [*query.hashes, to_ms(query.campaign_since)],
                ):
                    if (site, comment_id) not in batch:
                        texts.setdefault(digest, []).append((author, from_ms_required(at)))
            statuses = self._statuses(tx, query.statuses)
        return Activity(
            prior=prior,
            recent={k: tuple(v) for k, v in recent.items()},
            texts={k: tuple(v) for k, v in texts.items()},
            statuses=statuses,
        )
