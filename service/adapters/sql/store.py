"""`ReviewStore` on SQL. Each operation is one short transaction run in a worker thread, so the
event loop never waits on the database."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import msgspec

from service.adapters.sql import bulk
from service.adapters.sql.dialects import Dialect, Row, Tx, dialect_for
from service.adapters.sql.migrations import MIGRATIONS
from service.domain.authors import (
    AuthorMark,
    AuthorStatus,
    author_audit_action,
    author_audit_detail,
)
from service.domain.bulk import BulkAction
from service.domain.errors import (
    AlreadyDecided,
    ClaimedByOther,
    InvalidCursor,
    ReviewNotFound,
    StoreFailed,
    StoreUnavailable,
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
    overturned,
    reason_source,
    training_label,
)
from service.domain.model import (
    Action,
    Decision,
    Language,
    ModeratorReason,
    Reason,
    ReasonCode,
    Scores,
    SubScore,
)
from service.domain.review import (
    Activity,
    ActivityQuery,
    AuditEntry,
    AuthorCounts,
    AuthorKey,
    AutoDecision,
    CommentSummary,
    HistoryEntry,
    ModeratorDecision,
    OutboxDraft,
    OutboxRecord,
    Page,
    QueueOrder,
    QueueStats,
    ReviewItem,
    ReviewStatus,
    StoredComment,
)
from service.domain.spot_check import SpotCheckCounts, is_spot_check_round, verdict_publishes

T = TypeVar("T")
_MAX_FLAGS: Final = 20  # reasons kept from one round's reports (the count is in the weight)

_ITEM_COLUMNS: Final = (
    "site_id, comment_id, text, author_id, author_name, thread_id, created_at_ms, spam, abuse, "
    "reasons, model_version, policy_version, queued_at_ms, status, claimed_by, "
    "claim_expires_at_ms, decision, decided_by, decided_at_ms, decision_reason, note, flags, "
    "report_weight, sub_scores, language, language_detected, parent_id, thread_url, "
    "thread_title, auto_action"
)


_JSON_ENCODER: Final = msgspec.json.Encoder()
_SUB_SCORE_FIELDS: Final = tuple(name.value for name in SubScore)  # = the `Scores` fields

_INSERT_COMMENT: Final = (
    "INSERT INTO comments (site_id, comment_id, text, author_id, author_name, thread_id, "
    "created_at_ms, spam, abuse, risk, reasons, reason_codes, model_version, policy_version, "
    "auto_action, auto_decided_at_ms, event_json, status, queued_at_ms, text_hash, "
    "campaign_author, sub_scores, language, language_detected, parent_id, thread_url, "
    "thread_title, flags, spot_check) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (site_id, comment_id) DO NOTHING"
)


def _comment_row(c: StoredComment) -> tuple[Any, ...]:
    # a spot check joins the queue with its reason among the round's (as a report's does)
    spot = c.spot_check
    queued = (c.action is Action.REVIEW and c.queued) or spot is not None
    codes = [r.code.value for r in c.reasons] + ([spot.code.value] if spot else [])
    decided_ms = _ms(c.decided_at)
    return (
        c.site_id,
        c.comment_id,
        _clean(c.text),
        _clean(c.author_id),
        _clean(c.author_name),
        _clean(c.thread_id),
        _ms(c.created_at) if c.created_at else None,
        c.scores.spam,
        c.scores.abuse,
        max(c.scores.spam, c.scores.abuse),
        _json_text([{"code": r.code.value, "detail": r.detail} for r in c.reasons]),
        "," + ",".join(codes) + ",",
        c.model_version,
        c.policy_version,
        c.action.value,
        decided_ms,
        c.event_json,
        ReviewStatus.PENDING.value if queued else None,
        decided_ms if queued else None,
        c.text_hash,
        c.campaign_author,
        _sub_scores_json(c.scores),
        None if c.language is None else c.language.code,
        None if c.language is None else int(c.language.detected),
        _clean(c.parent_id),
        _clean(c.thread_url),
        _clean(c.thread_title),
        None if spot is None else _json_text([{"code": spot.code.value, "detail": spot.detail}]),
        int(spot is not None),
    )


def _json_text(value: object) -> str:
    """Compact JSON for a TEXT column (read back with `json.loads`)."""
    return _JSON_ENCODER.encode(value).decode()


def _sub_scores_json(scores: Scores) -> str | None:
    given = {n: v for n in _SUB_SCORE_FIELDS if (v := getattr(scores, n)) is not None}
    return _json_text(given) if given else None


def _scores(spam: float, abuse: float, sub_scores: str | None) -> Scores:
    subs = {SubScore(k).value: float(v) for k, v in json.loads(sub_scores or "{}").items()}
    return Scores(spam=float(spam), abuse=float(abuse), **subs)


def _language(code: str | None, detected: int | None) -> Language | None:
    return None if code is None else Language(code, detected=bool(detected))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _at_required(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _reason_code(code: str) -> ReasonCode | ModeratorReason:
    try:
        return ReasonCode(code)
    except ValueError:
        return ModeratorReason(code)


def _reasons(raw: str | None) -> tuple[Reason, ...]:
    return tuple(Reason(_reason_code(r["code"]), r["detail"]) for r in json.loads(raw or "[]"))


def _item(row: Row) -> ReviewItem:
    # the automatic decision's reasons, then those the round's reports and appeals added
    reasons = _reasons(row[9]) + _reasons(row[21])
    return ReviewItem(
        site_id=row[0],
        comment_id=row[1],
        text=row[2],
        author_id=row[3],
        author_name=row[4],
        thread_id=row[5],
        created_at=_at(row[6]),
        scores=_scores(row[7], row[8], row[23]),
        reasons=reasons,
        model_version=row[10],
        policy_version=row[11],
        queued_at=_at_required(row[12]),
        status=ReviewStatus(row[13]),
        claimed_by=row[14],
        claim_expires_at=_at(row[15]),
        decision=Action(row[16]) if row[16] else None,
        decided_by=row[17],
        decided_at=_at(row[18]),
        decision_reason=ModeratorReason(row[19]) if row[19] else None,
        note=row[20],
        report_weight=float(row[22] or 0.0),
        language=_language(row[24], row[25]),
        parent_id=row[26],
        thread_url=row[27],
        thread_title=row[28],
        auto_action=Action(row[29]),
    )


_MARK_COLUMNS: Final = "site_id, author_id, status, note, set_by, set_at_ms"


def _mark(row: Row) -> AuthorMark:
    return AuthorMark(row[0], row[1], AuthorStatus(row[2]), row[3], row[4], _at_required(row[5]))


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; neither store keeps it, so both behave the same."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _like_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))
    ):
        raise InvalidCursor("the cursor is not one this API returned")
    return values


def _in(column: str, values: frozenset[str] | None) -> tuple[str, list[Any]]:
    if values is None:
        return "", []
    if not values:
        return " AND 1 = 0", []
    return f" AND {column} IN ({', '.join('?' * len(values))})", sorted(values)


class SqlReviewStore:
    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self._executor = ThreadPoolExecutor(dialect.workers, thread_name_prefix="store")
        self._opened = False
        self._open_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SqlReviewStore:
        return cls(dialect_for(url))

    @property
    def dialect(self) -> str:
        return self._db.name

    async def _run(self, operation: Callable[..., T], *args: Any) -> T:
        def guarded() -> T:
            try:
                with self._open_lock:
                    if not self._opened:
                        self._db.open()
                        self._opened = True
                return operation(*args)
            except self._db.transient as exc:
                message = f"{self._db.name}: {type(exc).__name__}: {exc}"
                if self._db.fatal(exc):
                    raise StoreFailed(message) from exc
                raise StoreUnavailable(message) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, guarded)

    async def close(self) -> None:
        def close() -> None:
            self._db.close()
            self._opened = False

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        def ping() -> None:
            with self._db.transaction(write=False) as tx:
                tx.fetchone("SELECT 1")

        await self._run(ping)

    async def migrate(self) -> None:
        await self._run(self._migrate)

    def _migrate(self) -> None:
        with self._db.transaction(write=True) as tx:
            # under the lock: two instances creating it at once would collide in PostgreSQL's
            # catalog even with IF NOT EXISTS
            self._db.lock_migrations(tx)
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at_ms BIGINT NOT NULL)"
            )
        for version, description, statements in MIGRATIONS:
            with self._db.transaction(write=True) as tx:
                self._db.lock_migrations(tx)
                if tx.fetchone("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for statement in statements:
                    tx.execute(statement.format(autoid=self._db.autoid, blob=self._db.blob))
                tx.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at_ms) "
                    "VALUES (?, ?, ?)",
                    (version, description, _ms(datetime.now(UTC))),
                )

    async def schema_version(self) -> int:
        def read() -> int:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone("SELECT MAX(version) FROM schema_migrations")
            return int(row[0]) if row and row[0] is not None else 0

        return await self._run(read)

    async def record_decisions(self, comments: Sequence[StoredComment]) -> None:
        if comments:
            await self._run(self._record, comments)

    def _record(self, comments: Sequence[StoredComment]) -> None:
        with self._db.transaction(write=True) as tx:
            tx.executemany(_INSERT_COMMENT, [_comment_row(c) for c in comments])

    async def record_one(self, comment: StoredComment, outbox: OutboxDraft) -> bool:
        def record() -> bool:
            with self._db.transaction(write=True) as tx:
                if tx.execute(_INSERT_COMMENT, _comment_row(comment)) == 0:
                    return False  # decided before: nothing to publish again
                tx.execute(
                    "INSERT INTO outbox (event_id, topic, key, value, created_at_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        outbox.event_id,
                        outbox.topic,
                        outbox.key,
                        outbox.value,
                        _ms(comment.decided_at),
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
            reasons = tuple(
                Reason(_reason_code(r["code"]), r["detail"]) for r in json.loads(row[3])
            )
            decision = Decision(
                comment_id=comment_id,
                site_id=site_id,
                action=Action(row[0]),
                scores=_scores(row[1], row[2], row[7]),
                reasons=reasons,
                model_version=row[4],
                policy_version=row[5],
                language=_language(row[8], row[9]),
            )
            return AutoDecision(decision, _at_required(row[6]))

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
                    [*flat, _ms(query.flood_since)],
                ):
                    if (site, comment_id) not in batch:
                        recent.setdefault((site, author), []).append(_at_required(at))
            if query.hashes:
                marks = ", ".join("?" * len(query.hashes))
                for digest, author, site, comment_id, at in tx.fetchall(
                    "SELECT text_hash, campaign_author, site_id, comment_id, auto_decided_at_ms "
                    f"FROM comments WHERE text_hash IN ({marks}) AND auto_decided_at_ms >= ?",
                    [*query.hashes, _ms(query.campaign_since)],
                ):
                    if (site, comment_id) not in batch:
                        texts.setdefault(digest, []).append((author, _at_required(at)))
            statuses = self._statuses(tx, query.statuses)
        return Activity(
            prior=prior,
            recent={k: tuple(v) for k, v in recent.items()},
            texts={k: tuple(v) for k, v in texts.items()},
            statuses=statuses,
        )

    def _statuses(self, tx: Tx, authors: Sequence[AuthorKey]) -> dict[AuthorKey, AuthorStatus]:
        # an id with NUL cannot have a status (the API refuses control characters), and
        # PostgreSQL text cannot hold it: such authors are not asked about
        authors = [k for k in authors if "\x00" not in k[1]]
        if not authors:
            return {}
        pairs = ", ".join("(?, ?)" for _ in authors)
        rows = tx.fetchall(
            "SELECT site_id, author_id, status FROM author_status "
            f"WHERE (site_id, author_id) IN (VALUES {pairs})",
            [v for pair in authors for v in pair],
        )
        return {(site, author): AuthorStatus(status) for site, author, status in rows}

    async def author_statuses(
        self,
        site_id: str,
        *,
        status: AuthorStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[AuthorMark]:
        after = _decode_cursor(cursor, (str,))[0] if cursor else None

        def read() -> Page[AuthorMark]:
            sql = f"SELECT {_MARK_COLUMNS} FROM author_status WHERE site_id = ?"
            params: list[Any] = [site_id]
            if status is not None:
                sql += " AND status = ?"
                params.append(status.value)
            if after is not None:
                sql += " AND author_id > ?"
                params.append(after)
            sql += " ORDER BY author_id LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            marks = tuple(_mark(r) for r in rows[:limit])
            more = len(rows) > limit and marks
            return Page(marks, _encode_cursor(marks[-1].author_id) if more else None)

        return await self._run(read)

    async def author_status(self, site_id: str, author_id: str) -> AuthorMark | None:
        def read() -> AuthorMark | None:
            with self._db.transaction(write=False) as tx:
                return self._mark(tx, site_id, author_id, lock=False)

        return await self._run(read)

    def _mark(self, tx: Tx, site_id: str, author_id: str, *, lock: bool) -> AuthorMark | None:
        row = tx.fetchone(
            f"SELECT {_MARK_COLUMNS} FROM author_status WHERE site_id = ? AND author_id = ?"
            + (self._db.for_update if lock else ""),
            (site_id, author_id),
        )
        return None if row is None else _mark(row)

    async def set_author_status(self, mark: AuthorMark) -> tuple[AuthorMark, AuthorMark | None]:
        note = _clean(mark.note)

        def write() -> tuple[AuthorMark, AuthorMark | None]:
            with self._db.transaction(write=True) as tx:
                before = self._mark(tx, mark.site_id, mark.author_id, lock=True)
                if before is not None and (before.status, before.note) == (mark.status, note):
                    return before, before  # asked again: nothing changes, who and when stay
                tx.execute(
                    "INSERT INTO author_status (site_id, author_id, status, note, set_by, "
                    "set_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, author_id) DO "
                    "UPDATE SET status = excluded.status, note = excluded.note, "
                    "set_by = excluded.set_by, set_at_ms = excluded.set_at_ms",
                    (
                        mark.site_id,
                        mark.author_id,
                        mark.status.value,
                        note,
                        mark.set_by,
                        _ms(mark.set_at),
                    ),
                )
                self._audit(
                    tx,
                    actor=mark.set_by,
                    action=author_audit_action(mark.status, set_=True),
                    site_id=mark.site_id,
                    comment_id=None,
                    detail=author_audit_detail(mark.author_id, mark.status, note, before),
                    now=mark.set_at,
                )
                after = self._mark(tx, mark.site_id, mark.author_id, lock=False)
            assert after is not None  # noqa: S101 - just written in this transaction
            return after, before

        return await self._run(write)

    async def clear_author_status(
        self, site_id: str, author_id: str, *, actor: str, now: datetime
    ) -> AuthorMark | None:
        def clear() -> AuthorMark | None:
            with self._db.transaction(write=True) as tx:
                before = self._mark(tx, site_id, author_id, lock=True)
                if before is None:
                    return None
                tx.execute(
                    "DELETE FROM author_status WHERE site_id = ? AND author_id = ?",
                    (site_id, author_id),
                )
                self._audit(
                    tx,
                    actor=actor,
                    action=author_audit_action(before.status, set_=False),
                    site_id=site_id,
                    comment_id=None,
                    detail=author_audit_detail(author_id, None, None, before),
                    now=now,
                )
            return before

        return await self._run(clear)

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
        after = _decode_cursor(cursor, (int, str, str)) if cursor else None

        def query() -> Page[ReviewItem]:
            site_sql, params = _in("site_id", sites)
            sql = f"SELECT {_ITEM_COLUMNS} FROM comments WHERE status = 'pending'{site_sql}"
            if reason is not None:
                sql += " AND reason_codes LIKE ? ESCAPE '\\'"
                params.append(f"%,{_like_literal(reason)},%")
            if older_than is not None:
                sql += " AND queued_at_ms <= ?"
                params.append(_ms(now - older_than))
            if after is not None:
                sql += " AND (queued_at_ms, site_id, comment_id) > (?, ?, ?)"
                params.extend(after)
            sql += " ORDER BY queued_at_ms, site_id, comment_id LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            items = tuple(_item(r) for r in rows[:limit])
            more = len(rows) > limit
            last = items[-1] if items else None
            next_cursor = (
                _encode_cursor(_ms(last.queued_at), last.site_id, last.comment_id)
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
                    (site_id, _ms(now), count),
                )
                ids = [row[0] for row in picked]
                if not ids:
                    return []
                marks = ", ".join("?" * len(ids))
                tx.execute(
                    "UPDATE comments SET claimed_by = ?, claim_expires_at_ms = ? "
                    f"WHERE site_id = ? AND comment_id IN ({marks})",
                    (moderator_id, _ms(now + lease), site_id, *ids),
                )
                rows = tx.fetchall(
                    f"SELECT {_ITEM_COLUMNS} FROM comments "
                    f"WHERE site_id = ? AND comment_id IN ({marks})",
                    (site_id, *ids),
                )
            by_id = {row[1]: _item(row) for row in rows}
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
        if row[1] not in (None, decision.moderator_id) and row[2] > _ms(now):
            raise ClaimedByOther(*key)
        actor = f"moderator:{decision.moderator_id}"
        tx.execute(
            "UPDATE comments SET status = 'decided', decision = ?, decided_by = ?, "
            "decided_at_ms = ?, decision_reason = ?, note = ?, claimed_by = NULL, "
            "claim_expires_at_ms = NULL WHERE site_id = ? AND comment_id = ?",
            (
                decision.action.value,
                actor,
                _ms(now),
                decision.reason.value,
                decision.note,
                *key,
            ),
        )
        auto_action = Action(row[4])
        round_codes = [r.code.value for r in _reasons(row[6])]
        spot = is_spot_check_round(auto_action, round_codes)
        detail = f"{decision.action.value} ({decision.reason.value})"
        if verdict_publishes(auto_action, round_codes, decision.action):
            tx.execute(
                "INSERT INTO outbox (event_id, topic, key, value, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (outbox.event_id, outbox.topic, outbox.key, outbox.value, _ms(now)),
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
            f"SELECT {_ITEM_COLUMNS} FROM comments WHERE site_id = ? AND comment_id = ?",
            key,
        )
        assert item is not None  # noqa: S101 - just written in this transaction
        return _item(item)

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
                _ms(now),
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

    async def apply_feedback(self, feedback: Feedback) -> FeedbackOutcome:
        reason = _clean(feedback.reason[:2000]) or ""

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
                spot = is_spot_check_round(Action(row[3]), (r.code for r in _reasons(row[2])))
                action = Action.REVIEW if pending and not spot else Action(row[1])
                inserted = tx.execute(
                    "INSERT INTO feedback (kind, site_id, comment_id, actor_id, reason, "
                    "received_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        feedback.kind.value,
                        *key,
                        feedback.actor_id,
                        reason,
                        _ms(feedback.at),
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
                    flags = [*json.loads(row[2] or "[]"), flag][-_MAX_FLAGS:]
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
                    (_ms(feedback.at), json.dumps([flag]), weight, f"{code.value},", *key),
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
                    labelled_at=_at_required(r[8]),
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
                        _clean(example.text) or "",
                        example.label.value,
                        example.auto_action.value,
                        example.final_action.value,
                        int(example.overturned),
                        example.labelled_by,
                        _ms(example.labelled_at),
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
                    (site_id, _ms(since), limit),
                )
            return [r[0] for r in rows]

        return await self._run(read)

    async def get_item(self, site_id: str, comment_id: str) -> ReviewItem:
        def get() -> ReviewItem:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone(
                    f"SELECT {_ITEM_COLUMNS} FROM comments WHERE site_id = ? AND comment_id = ? "
                    "AND status IS NOT NULL",
                    (site_id, comment_id),
                )
            if row is None:
                raise ReviewNotFound(site_id, comment_id)
            return _item(row)

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
                params.append(_ms(before))
            sql += " ORDER BY t DESC, comment_id LIMIT ?"
            params.append(limit)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            return [
                HistoryEntry(r[0], r[1], _at(r[2]), Action(r[3]), r[4], _at_required(r[5]))
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
                decided_at=_at_required(row[7]),
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

    def _audit(
        self,
        tx: Tx,
        *,
        actor: str,
        action: str,
        site_id: str | None,
        comment_id: str | None,
        detail: str,
        now: datetime,
    ) -> None:
        tx.execute(
            "INSERT INTO audit (at_ms, actor, action, site_id, comment_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_ms(now), actor, action, site_id, comment_id, detail),
        )

    async def add_audit(
        self,
        actor: str,
        action: str,
        site_id: str | None,
        comment_id: str | None,
        detail: str,
        *,
        now: datetime,
    ) -> None:
        def add() -> None:
            with self._db.transaction(write=True) as tx:
                self._audit(
                    tx,
                    actor=actor,
                    action=action,
                    site_id=site_id,
                    comment_id=comment_id,
                    detail=detail,
                    now=now,
                )

        await self._run(add)

    async def audit_log(
        self, sites: frozenset[str] | None, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        before = _decode_cursor(cursor, (int,))[0] if cursor else None

        def read() -> Page[AuditEntry]:
            site_sql, params = _in("site_id", sites)
            sql = (
                "SELECT id, at_ms, actor, action, site_id, comment_id, detail FROM audit "
                f"WHERE 1 = 1{site_sql}"
            )
            if before is not None:
                sql += " AND id < ?"
                params.append(before)
            sql += " ORDER BY id DESC LIMIT ?"
            params.append(limit + 1)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(sql, params)
            entries = tuple(
                AuditEntry(int(r[0]), _at_required(r[1]), r[2], r[3], r[4], r[5], r[6])
                for r in rows[:limit]
            )
            more = len(rows) > limit
            return Page(entries, _encode_cursor(entries[-1].id) if more and entries else None)

        return await self._run(read)

    async def spot_check_counts(self, sites: frozenset[str] | None) -> list[SpotCheckCounts]:
        def counts() -> list[SpotCheckCounts]:
            site_sql, params = _in("site_id", sites)
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

    async def queue_stats(self, sites: frozenset[str] | None) -> list[QueueStats]:
        def stats() -> list[QueueStats]:
            site_sql, params = _in("site_id", sites)
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(
                    "SELECT site_id, COUNT(*), COUNT(claimed_by), MIN(queued_at_ms) FROM comments "
                    f"WHERE status = 'pending'{site_sql} GROUP BY site_id ORDER BY site_id",
                    params,
                )
            return [QueueStats(r[0], int(r[1]), int(r[2]), _at(r[3])) for r in rows]

        return await self._run(stats)

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        def pending() -> list[OutboxRecord]:
            with self._db.transaction(write=False) as tx:
                rows = tx.fetchall(
                    "SELECT id, event_id, topic, key, value, created_at_ms FROM outbox "
                    "WHERE sent_at_ms IS NULL ORDER BY id LIMIT ?",
                    (limit,),
                )
            return [
                OutboxRecord(int(r[0]), r[1], r[2], bytes(r[3]), bytes(r[4]), _at_required(r[5]))
                for r in rows
            ]

        return await self._run(pending)

    async def outbox_backlog(self) -> int:
        def count() -> int:
            with self._db.transaction(write=False) as tx:
                row = tx.fetchone("SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL")
            return int(row[0]) if row else 0

        return await self._run(count)

    async def outbox_mark_sent(self, ids: Sequence[int], *, now: datetime) -> None:
        def mark() -> None:
            if not ids:
                return
            with self._db.transaction(write=True) as tx:
                tx.execute(
                    f"UPDATE outbox SET sent_at_ms = ? WHERE id IN ({', '.join('?' * len(ids))})",
                    (_ms(now), *ids),
                )

        await self._run(mark)

    # --- bulk actions (migration 9; the SQL is in bulk.py) ----------------------------------

    def _audit_in(self, tx: Tx, now: datetime) -> bulk.Audit:
        def audit(actor: str, action: str, site: str, comment: str | None, detail: str) -> None:
            self._audit(
                tx,
                actor=actor,
                action=action,
                site_id=site,
                comment_id=comment,
                detail=detail,
                now=now,
            )

        return audit

    async def create_bulk(self, action: BulkAction, *, hold_until: datetime) -> BulkAction:
        def create() -> BulkAction:
            with self._db.transaction(write=True) as tx:
                bulk.create(
                    tx,
                    action,
                    hold_until=hold_until,
                    for_update=self._db.for_update,
                    audit=self._audit_in(tx, action.created_at),
                )
                return bulk.read(tx, action.id)

        return await self._run(create)

    async def get_bulk(self, action_id: str) -> BulkAction:
        def get() -> BulkAction:
            with self._db.transaction(write=False) as tx:
                return bulk.read(tx, action_id)

        return await self._run(get)

    async def pending_bulk(self, moderator_id: str, site_id: str | None) -> list[BulkAction]:
        def pending() -> list[BulkAction]:
            with self._db.transaction(write=False) as tx:
                return bulk.pending(tx, moderator_id, site_id)

        return await self._run(pending)

    async def due_bulk(self, now: datetime, limit: int) -> list[str]:
        def due() -> list[str]:
            with self._db.transaction(write=False) as tx:
                return bulk.due(tx, now, limit)

        return await self._run(due)

    async def undo_bulk(
        self, action_id: str, actor: str, *, lease_until: datetime, now: datetime
    ) -> BulkAction:
        def undo() -> BulkAction:
            with self._db.transaction(write=True) as tx:
                return bulk.undo(
                    tx,
                    action_id,
                    actor,
                    lease_until=lease_until,
                    now=now,
                    audit=self._audit_in(tx, now),
                )

        return await self._run(undo)

    async def apply_bulk(
        self, action_id: str, drafts: Mapping[str, OutboxDraft], *, now: datetime
    ) -> BulkAction | None:
        def apply() -> BulkAction | None:
            with self._db.transaction(write=True) as tx:
                return bulk.apply(
                    tx,
                    action_id,
                    drafts,
                    now=now,
                    decide=lambda verdict, draft: self._decide_in(tx, verdict, draft, now),
                    audit=self._audit_in(tx, now),
                )

        return await self._run(apply)
