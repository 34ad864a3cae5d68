"""The SQL of bulk actions (migration 9), run inside the review store's transactions.

Holding: creating an action claims its items for its moderator until the window's end plus a
lease, in the creating transaction, so nobody else decides them meanwhile. Applying and
undoing move the action out of `pending` by a conditional update (`WHERE status =
'pending'`): on PostgreSQL a second transaction waits for the first's row lock and then finds
no pending row; on SQLite `BEGIN IMMEDIATE` serialises them. The loser changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from service.adapters.sql.dialects import Row, Tx
from service.domain.bulk import (
    BulkAction,
    BulkActionClosed,
    BulkActionNotFound,
    BulkItem,
    BulkStatus,
    InBulkAction,
    ItemOutcome,
)
from service.domain.errors import AlreadyDecided, ClaimedByOther, ReviewNotFound
from service.domain.model import Action, ModeratorReason
from service.domain.review import ModeratorDecision, OutboxDraft, ReviewItem

Audit = Callable[[str, str, str, str | None, str], None]  # actor, action, site, comment, detail
Decide = Callable[[ModeratorDecision, OutboxDraft], ReviewItem]

_COLUMNS: Final = (
    "id, site_id, moderator_id, action, reason, reason_given, note, status, created_at_ms, "
    "apply_at_ms, finished_at_ms"
)
_SKIPPED: Final[tuple[tuple[type[Exception], ItemOutcome], ...]] = (
    (ReviewNotFound, ItemOutcome.NOT_FOUND),
    (AlreadyDecided, ItemOutcome.ALREADY_DECIDED),
    (ClaimedByOther, ItemOutcome.CLAIMED_BY_OTHER),
)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _action(row: Row, items: Sequence[Row]) -> BulkAction:
    return BulkAction(
        id=row[0],
        site_id=row[1],
        moderator_id=row[2],
        action=Action(row[3]),
        reason=ModeratorReason(row[4]),
        reason_given=bool(row[5]),
        note=row[6],
        items=tuple(BulkItem(i[0], ItemOutcome(i[1]) if i[1] else None) for i in items),
        status=BulkStatus(row[7]),
        created_at=_at(row[8]),
        apply_at=_at(row[9]),
        finished_at=None if row[10] is None else _at(row[10]),
    )


def read(tx: Tx, action_id: str) -> BulkAction:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM bulk_actions WHERE id = ?", (action_id,))
    if row is None:
        raise BulkActionNotFound(action_id)
    items = tx.fetchall(
        "SELECT comment_id, outcome FROM bulk_items WHERE action_id = ? ORDER BY position",
        (action_id,),
    )
    return _action(row, items)


def pending(tx: Tx, moderator_id: str, site_id: str | None) -> list[BulkAction]:
    sql = "SELECT id FROM bulk_actions WHERE moderator_id = ? AND status = 'pending'"
    params: list[object] = [moderator_id]
    if site_id is not None:
        sql += " AND site_id = ?"
        params.append(site_id)
    rows = tx.fetchall(sql + " ORDER BY created_at_ms, id", params)
    return [read(tx, r[0]) for r in rows]


def due(tx: Tx, now: datetime, limit: int) -> list[str]:
    rows = tx.fetchall(
        "SELECT id FROM bulk_actions WHERE status = 'pending' AND apply_at_ms <= ? "
        "ORDER BY apply_at_ms, id LIMIT ?",
        (_ms(now), limit),
    )
    return [r[0] for r in rows]


def create(
    tx: Tx,
    action: BulkAction,
    *,
    hold_until: datetime,
    for_update: str,
    audit: Audit,
) -> None:
    site, ids = action.site_id, sorted(set(action.comment_ids))
    marks = ", ".join("?" * len(ids))
    rows = {
        r[0]: r
        for r in tx.fetchall(  # locked in one order: concurrent creations cannot deadlock
            "SELECT comment_id, status, claimed_by, claim_expires_at_ms, decided_by "
            f"FROM comments WHERE site_id = ? AND comment_id IN ({marks}) "
            f"ORDER BY comment_id{for_update}",
            (site, *ids),
        )
    }
    now = _ms(action.created_at)
    for comment_id in action.comment_ids:
        row = rows.get(comment_id)
        if row is None or row[1] is None:
            raise ReviewNotFound(site, comment_id)
        if row[1] != "pending":
            raise AlreadyDecided(site, comment_id, row[4])
        if row[2] not in (None, action.moderator_id) and row[3] > now:
            raise ClaimedByOther(site, comment_id)
    held = tx.fetchone(
        "SELECT i.comment_id, a.id FROM bulk_items i JOIN bulk_actions a ON a.id = i.action_id "
        f"WHERE i.site_id = ? AND i.comment_id IN ({marks}) AND a.status = 'pending' "
        "ORDER BY i.comment_id LIMIT 1",
        (site, *ids),
    )
    if held is not None:
        raise InBulkAction(site, held[0], held[1])
    tx.execute(
        "UPDATE comments SET claimed_by = ?, claim_expires_at_ms = ? "
        f"WHERE site_id = ? AND comment_id IN ({marks})",
        (action.moderator_id, _ms(hold_until), site, *ids),
    )
    tx.execute(
        f"INSERT INTO bulk_actions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            action.id,
            site,
            action.moderator_id,
            action.action.value,
            action.reason.value,
            int(action.reason_given),
            action.note,
            BulkStatus.PENDING.value,
            now,
            _ms(action.apply_at),
            None,
        ),
    )
    tx.executemany(
        "INSERT INTO bulk_items (action_id, position, site_id, comment_id) VALUES (?, ?, ?, ?)",
        [(action.id, n, site, cid) for n, cid in enumerate(action.comment_ids)],
    )
    audit(
        f"moderator:{action.moderator_id}",
        "bulk_create",
        site,
        None,
        f"bulk action {action.id}: {_verdict(action)} of {len(ids)} items, applied at "
        f"{action.apply_at.isoformat()} unless undone: {_listed(action.comment_ids)}",
    )


def undo(
    tx: Tx, action_id: str, actor: str, *, lease_until: datetime, now: datetime, audit: Audit
) -> BulkAction:
    changed = tx.execute(
        "UPDATE bulk_actions SET status = 'undone', finished_at_ms = ? "
        "WHERE id = ? AND status = 'pending' AND apply_at_ms > ?",
        (_ms(now), action_id, _ms(now)),
    )
    action = read(tx, action_id)
    if changed == 0:
        raise BulkActionClosed(action, now)
    marks = ", ".join("?" * len(action.items))
    # the moderator keeps the items, now on an ordinary lease
    tx.execute(
        "UPDATE comments SET claim_expires_at_ms = ? WHERE site_id = ? AND status = 'pending' "
        f"AND claimed_by = ? AND comment_id IN ({marks})",
        (_ms(lease_until), action.site_id, action.moderator_id, *action.comment_ids),
    )
    audit(
        actor,
        "bulk_undo",
        action.site_id,
        None,
        f"bulk action {action.id} undone: {_verdict(action)} of {len(action.items)} items "
        f"not applied, nothing published: {_listed(action.comment_ids)}",
    )
    return action


def apply(
    tx: Tx,
    action_id: str,
    drafts: Mapping[str, OutboxDraft],
    *,
    now: datetime,
    decide: Decide,
    audit: Audit,
) -> BulkAction | None:
    changed = tx.execute(
        "UPDATE bulk_actions SET status = 'applied', finished_at_ms = ? "
        "WHERE id = ? AND status = 'pending' AND apply_at_ms <= ?",
        (_ms(now), action_id, _ms(now)),
    )
    if changed == 0:
        return None
    action = read(tx, action_id)
    outcomes: dict[str, ItemOutcome] = {}
    for comment_id in sorted(set(action.comment_ids)):  # the creation's lock order
        draft = drafts.get(comment_id)
        verdict = action.verdict(comment_id)
        if draft is None:  # the item was gone when the drafts were made
            outcomes[comment_id] = ItemOutcome.NOT_FOUND
            continue
        try:
            decide(verdict, draft)  # checks come before any write: a refusal writes nothing
        except (ReviewNotFound, AlreadyDecided, ClaimedByOther) as exc:
            outcomes[comment_id] = next(o for kind, o in _SKIPPED if isinstance(exc, kind))
        else:
            outcomes[comment_id] = ItemOutcome.DECIDED
    tx.executemany(
        "UPDATE bulk_items SET outcome = ? WHERE action_id = ? AND comment_id = ?",
        [(o.value, action_id, cid) for cid, o in outcomes.items()],
    )
    decided = sum(o is ItemOutcome.DECIDED for o in outcomes.values())
    skipped = sorted(cid for cid, o in outcomes.items() if o is not ItemOutcome.DECIDED)
    audit(
        f"moderator:{action.moderator_id}",
        "bulk_apply",
        action.site_id,
        None,
        f"bulk action {action.id} applied: {_verdict(action)} of {decided} items"
        + (f"; skipped {_listed(skipped)}" if skipped else ""),
    )
    return read(tx, action_id)


def _verdict(action: BulkAction) -> str:
    return f"{action.action.value} ({action.reason.value})"


def _listed(ids: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")
