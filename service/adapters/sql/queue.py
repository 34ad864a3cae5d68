"""`ReviewQueue` on SQL: listing, claims, moderator decisions (with their label and outbox
record), an item's context, queue and spot-check counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from service.adapters.sql.base import SqlBase
from service.adapters.sql.dialects import Tx
from service.adapters.sql.rows import (
    ITEM_COLUMNS,
    decode_cursor,
    encode_cursor,
    from_ms,
    from_ms_required,
    in_clause,
    item_of,
    like_literal,
    reasons_of,
    to_ms,
)
from service.domain.errors import (
    AlreadyDecided,
    ClaimedByOther,
    ReviewNotFound,
)
from service.domain.feedback import (
    overturned,
    reason_source,
    training_label,
)
from service.domain.model import (
    Action,
    ModeratorReason,
)
from service.domain.review import (
    AuthorCounts,
    CommentSummary,
    HistoryEntry,
    ModeratorDecision,
    OutboxDraft,
    Page,
    QueueOrder,
    QueueStats,
    ReviewItem,
    ReviewStatus,
)
from service.domain.spot_check import SpotCheckCounts, is_spot_check_round, verdict_publishes


class SqlReviewQueue(SqlBase):
    async def list_queue(
        self,
        sites: frozenset[str] | None,
        *,
        reason: str | None = None,
        older_than: timedelta | None = None,
        now: datetime,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ReviewItem]:
        after = decode_cursor(cursor, (int, str, str)) if cursor else None

        def query() -> Page[ReviewItem]:
            site_sql, params = in_clause("site_id", sites)
            sql = f"SELECT {ITEM_COLUMNS} FROM comments WHERE status = 'pending'{site_sql}"
            if reason is not None:
                sql += " AND reason_codes LIKE ? ESCAPE '\\'"
                params.append(f"%,{like_literal(reason)},%")
            if older_than is not None:
                sql += " AND queued_at_ms <= ?"
                params.append(to_ms(now - older_than))
            if after is not None:
                sql += " AND (queued_at_ms, site_id, comment_id) > (?, ?, ?)"
                params.extend(after)
            sql += " ORDER BY queued_at_ms, site_id, comment_id LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            items = tuple(item_of(r) for r in rows[:limit])
            more = len(rows) > limit
            last = items[-1] if items else None
            next_cursor = (
                encode_cursor(to_ms(last.queued_at), last.site_id, last.comment_id)
                if more and last
                else None
            )
            return Page(items, next_cursor)

        return await self._run(query)

    async def claim(
        self,
        site_id: str,
        moderator_id: str,
        count: int,
        *,
        order: QueueOrder,
        lease: timedelta,
        now: datetime,
    ) -> list[ReviewItem]:
        def claim() -> list[ReviewItem]:
            order_sql = {
                QueueOrder.OLDEST: "queued_at_ms, comment_id",
                QueueOrder.RISK: "risk DESC, comment_id",
                QueueOrder.REPORTS: "report_weight DESC, risk DESC, queued_at_ms, comment_id",
            }[order]
            with self._db.transaction(write=True) as tx:
                picked = tx.fetchall(
                    "SELECT comment_id FROM comments WHERE site_id = ? AND status = 'pending' "
                    "AND (claimed_by IS NULL OR claim_expires_at_ms <= ?) "
                    f"ORDER BY {order_sql} LIMIT ?{self._db.skip_locked}",
                    (site_id, to_ms(now), count),
                )
                ids = [row[0] for row in picked]
                if not ids:
                    return []
                marks = ", ".join("?" * len(ids))
                tx.execute(
                    "UPDATE comments SET claimed_by = ?, claim_expires_at_ms = ? "
                    f"WHERE site_id = ? AND comment_id IN ({marks})",
                    (moderator_id, to_ms(now + lease), site_id, *ids),
                )
                rows = tx.fetchall(
                    f"SELECT {ITEM_COLUMNS} FROM comments "
                    f"WHERE site_id = ? AND comment_id IN ({marks})",
                    (site_id, *ids),
                )
            by_id = {row[1]: item_of(row) for row in rows}
            return [by_id[i] for i in ids]

        return await self._run(claim)

    async def release(
        self, site_id: str, comment_ids: Sequence[str], moderator_id: str, *, now: datetime
    ) -> list[str]:
        def release() -> list[str]:
            if not comment_ids:
                return []
            marks = ", ".join("?" * len(comment_ids))
            with self._db.transaction(write=True) as tx:
                mine = [
                    row[0]
                    for row in tx.fetchall(
                        "SELECT comment_id FROM comments WHERE site_id = ? AND status = 'pending' "
                        f"AND claimed_by = ? AND comment_id IN ({marks}){self._db.for_update}",
                        (site_id, moderator_id, *comment_ids),
                    )
                ]
                if mine:
                    tx.execute(
                        "UPDATE comments SET claimed_by = NULL, claim_expires_at_ms = NULL "
                        f"WHERE site_id = ? AND comment_id IN ({', '.join('?' * len(mine))})",
                        (site_id, *mine),
                    )
            return sorted(mine)

        return await self._run(release)

    async def decide(
        self, decision: ModeratorDecision, outbox: OutboxDraft, *, now: datetime
    ) -> ReviewItem:
        def decide() -> ReviewItem:
            with self._db.transaction(write=True) as tx:
                return self._decide_in(tx, decision, outbox, now)

        return await self._run(decide)

    def _decide_in(
        self, tx: Tx, decision: ModeratorDecision, outbox: OutboxDraft, now: datetime
    ) -> ReviewItem:
        """`decide` inside a transaction; every check comes before the first write."""
        key = (decision.site_id, decision.comment_id)
        row = tx.fetchone(
            "SELECT status, claimed_by, claim_expires_at_ms, decided_by, auto_action, "
            f"text, flags FROM comments WHERE site_id = ? AND comment_id = ?{self._db.for_update}",
            key,
        )
        if row is None or row[0] is None:
            raise ReviewNotFound(*key)
        if row[0] == ReviewStatus.DECIDED.value:
            raise AlreadyDecided(*key, row[3])
        if row[1] not in (None, decision.moderator_id) and row[2] > to_ms(now):
            raise ClaimedByOther(*key)
        actor = f"moderator:{decision.moderator_id}"
        tx.execute(
            "UPDATE comments SET status = 'decided', decision = ?, decided_by = ?, "
            "decided_at_ms = ?, decision_reason = ?, note = ?, claimed_by = NULL, "
            "claim_expires_at_ms = NULL WHERE site_id = ? AND comment_id = ?",
            (
                decision.action.value,
                actor,
                to_ms(now),
                decision.reason.value,
                decision.note,
                *key,
            ),
        )
        auto_action = Action(row[4])
        round_codes = [r.code.value for r in reasons_of(row[6])]
        spot = is_spot_check_round(auto_action, round_codes)
        detail = f"{decision.action.value} ({decision.reason.value})"
        if verdict_publishes(auto_action, round_codes, decision.action):
            tx.execute(
                "INSERT INTO outbox (event_id, topic, key, value, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (outbox.event_id, outbox.topic, outbox.key, outbox.value, to_ms(now)),
            )
        else:
            detail += f"; confirms the automatic {auto_action.value}: not published"
        self._audit(
            tx,
            actor=actor,
            action="decide",
            site_id=decision.site_id,
            comment_id=decision.comment_id,
            detail=detail,
            now=now,
        )
        self._learn(tx, decision, auto_action, row[5], now, spot_check=spot)
        item = tx.fetchone(
            f"SELECT {ITEM_COLUMNS} FROM comments WHERE site_id = ? AND comment_id = ?",
            key,
        )
        assert item is not None  # noqa: S101 - just written in this transaction
        return item_of(item)

    def _learn(
        self,
        tx: Tx,
        decision: ModeratorDecision,
        auto_action: Action,
        text: str,
        now: datetime,
        *,
        spot_check: bool = False,
    ) -> None:
        """In the decision's transaction: the labelled example, and the verdict on this
        round's reports (upheld by a rejection) and appeals (upheld by an approval)."""
        key = (decision.site_id, decision.comment_id)
        tx.execute(
            "INSERT INTO labels (site_id, comment_id, text, label, auto_action, final_action, "
            "overturned, labelled_by, labelled_at_ms, reason_source, spot_check) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *key,
                text,
                training_label(decision.action, decision.reason).value,
                auto_action.value,
                decision.action.value,
                int(overturned(auto_action, decision.action)),
                f"moderator:{decision.moderator_id}",
                to_ms(now),
                reason_source(decision.action, reason_given=decision.reason_given).value,
                int(spot_check),
            ),
        )
        rejected = decision.action is Action.REJECT
        reporters = [
            r[0]
            for r in tx.fetchall(
                "SELECT actor_id FROM feedback WHERE site_id = ? AND comment_id = ? "
                "AND kind = 'report' AND outcome IS NULL ORDER BY actor_id",  # one lock order
                key,
            )
        ]
        tx.execute(
            "UPDATE feedback SET outcome = CASE WHEN kind = 'report' THEN ? ELSE ? END "
            "WHERE site_id = ? AND comment_id = ? AND outcome IS NULL",
            ("upheld" if rejected else "dismissed", "dismissed" if rejected else "upheld", *key),
        )
        for reporter in reporters:
            tx.execute(
                "INSERT INTO reporters (site_id, reporter_id, upheld, dismissed) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (site_id, reporter_id) DO UPDATE SET "
                "upheld = reporters.upheld + excluded.upheld, "
                "dismissed = reporters.dismissed + excluded.dismissed",
                (decision.site_id, reporter, int(rejected), int(not rejected)),
            )

    async def get_item(self, site_id: str, comment_id: str) -> ReviewItem:
        def get() -> ReviewItem:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    f"SELECT {ITEM_COLUMNS} FROM comments WHERE site_id = ? AND comment_id = ? "
                    "AND status IS NOT NULL",
                    (site_id, comment_id),
                )
            if row is None:
                raise ReviewNotFound(site_id, comment_id)
            return item_of(row)

        return await self._run(get)

    async def author_history(
        self, site_id: str, author_id: str, *, limit: int = 20, before: datetime | None = None
    ) -> list[HistoryEntry]:
        def history() -> list[HistoryEntry]:
            sql = (
                "SELECT comment_id, text, created_at_ms, COALESCE(decision, auto_action), "
                "COALESCE(decided_by, 'auto'), COALESCE(decided_at_ms, auto_decided_at_ms) AS t "
                "FROM comments WHERE site_id = ? AND author_id = ?"
            )
            params: list[Any] = [site_id, author_id]
            if before is not None:
                sql += " AND COALESCE(decided_at_ms, auto_decided_at_ms) < ?"
                params.append(to_ms(before))
            sql += " ORDER BY t DESC, comment_id LIMIT ?"
            params.append(limit)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            return [
                HistoryEntry(r[0], r[1], from_ms(r[2]), Action(r[3]), r[4], from_ms_required(r[5]))
                for r in rows
            ]

        return await self._run(history)

    async def comment_summary(self, site_id: str, comment_id: str) -> CommentSummary | None:
        def read() -> CommentSummary | None:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    "SELECT comment_id, text, author_id, author_name, status, "
                    "COALESCE(decision, auto_action), COALESCE(decided_by, 'auto'), "
                    "COALESCE(decided_at_ms, auto_decided_at_ms), decision_reason "
                    "FROM comments WHERE site_id = ? AND comment_id = ?",
                    (site_id, comment_id),
                )
            if row is None:
                return None
            waiting = row[4] == ReviewStatus.PENDING.value  # also when reported back in
            return CommentSummary(
                comment_id=row[0],
                text=row[1],
                author_id=row[2],
                author_name=row[3],
                action=Action.REVIEW if waiting else Action(row[5]),
                decided_by=row[6],
                decided_at=from_ms_required(row[7]),
                decision_reason=ModeratorReason(row[8]) if row[8] and not waiting else None,
            )

        return await self._run(read)

    async def author_counts(self, site_id: str, author_id: str) -> AuthorCounts:
        def read() -> AuthorCounts:
            done = "COALESCE(status, '') <> 'pending' AND COALESCE(decision, auto_action)"
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {done} = 'approve' THEN 1 END), 0), "
                    f"COALESCE(SUM(CASE WHEN {done} = 'reject' THEN 1 END), 0) "
                    "FROM comments WHERE site_id = ? AND author_id = ?",
                    (site_id, author_id),
                )
                reported = tx.fetchone(
                    "SELECT COUNT(DISTINCT f.comment_id) FROM feedback f JOIN comments c "
                    "ON c.site_id = f.site_id AND c.comment_id = f.comment_id "
                    "WHERE f.kind = 'report' AND f.site_id = ? AND c.author_id = ?",
                    (site_id, author_id),
                )
            total, approved, rejected = (int(v) for v in row) if row else (0, 0, 0)
            return AuthorCounts(
                total=total,
                approved=approved,
                rejected=rejected,
                waiting=total - approved - rejected,
                reported=int(reported[0]) if reported else 0,
            )

        return await self._run(read)

    async def queue_stats(self, sites: frozenset[str] | None) -> list[QueueStats]:
        def stats() -> list[QueueStats]:
            site_sql, params = in_clause("site_id", sites)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(
                    "SELECT site_id, COUNT(*), COUNT(claimed_by), MIN(queued_at_ms) FROM comments "
                    f"WHERE status = 'pending'{site_sql} GROUP BY site_id ORDER BY site_id",
                    params,
                )
            return [QueueStats(r[0], int(r[1]), int(r[2]), from_ms(r[3])) for r in rows]

        return await self._run(stats)

    async def spot_check_counts(self, sites: frozenset[str] | None) -> list[SpotCheckCounts]:
        def counts() -> list[SpotCheckCounts]:
            site_sql, params = in_clause("site_id", sites)
            with self._db.transaction(write=False) as tx:
                verdicts = tx.fetchall(
                    "SELECT site_id, auto_action, COUNT(*), SUM(overturned) FROM labels "
                    f"WHERE spot_check = 1{site_sql} GROUP BY site_id, auto_action",
                    params,
                )
                waiting = tx.fetchall(
                    "SELECT site_id, auto_action, COUNT(*) FROM comments "
                    "WHERE status = 'pending' AND reason_codes LIKE '%,spot_check,%' "
                    f"AND auto_action IN ('approve', 'reject'){site_sql} "
                    "GROUP BY site_id, auto_action",
                    params,
                )
            found: dict[tuple[str, str], list[int]] = {}
            for site, action, n, k in verdicts:
                found.setdefault((site, action), [0, 0, 0])[:2] = [int(n), int(k or 0)]
            for site, action, n in waiting:
                found.setdefault((site, action), [0, 0, 0])[2] = int(n)
            return [
                SpotCheckCounts(site, Action(action), n, k, w)
                for (site, action), (n, k, w) in sorted(found.items())
            ]

        return await self._run(counts)
