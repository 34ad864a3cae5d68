"""Review values as the API's JSON documents (shapes in `openapi.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.contracts.codec import rfc3339
from service.domain.access import Identity
from service.domain.authors import AuthorMark
from service.domain.bulk import BulkAction
from service.domain.model import Scores, SubScore
from service.domain.review import (
    AuditEntry,
    AuthorCounts,
    CommentSummary,
    HistoryEntry,
    ReviewItem,
)
from service.domain.spot_check import SpotCheckEstimate
from service.usecases.review_service import BulkResult, Detail, SiteStats

Json = dict[str, Any]


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def item(i: ReviewItem) -> Json:
    return {
        "site_id": i.site_id,
        "comment_id": i.comment_id,
        "text": i.text,
        "author": {"id": i.author_id, "name": i.author_name},
        "thread_id": i.thread_id,
        "created_at": _time(i.created_at),
        "scores": scores(i.scores),
        "language": None
        if i.language is None
        else {"code": i.language.code, "detected": i.language.detected},
        "risk": i.risk,
        "reasons": [{"code": r.code.value, "detail": r.detail} for r in i.reasons],
        "model_version": i.model_version,
        "policy_version": i.policy_version,
        "queued_at": rfc3339(i.queued_at),
        "status": i.status.value,
        "claimed_by": i.claimed_by,
        "claim_expires_at": _time(i.claim_expires_at),
        "decision": None if i.decision is None else i.decision.value,
        "decided_by": i.decided_by,
        "decided_at": _time(i.decided_at),
        "decision_reason": None if i.decision_reason is None else i.decision_reason.value,
        "note": i.note,
        "report_weight": i.report_weight,
        "parent_id": i.parent_id,
        "thread_url": i.thread_url,
        "thread_title": i.thread_title,
    }


def scores(s: Scores) -> Json:
    """Spam and abuse, and the abuse sub-scores the model gave."""
    subs = {name.value: value for name in SubScore if (value := s.sub(name)) is not None}
    return {"spam": s.spam, "abuse": s.abuse, **subs}


def history(h: HistoryEntry) -> Json:
    return {
        "comment_id": h.comment_id,
        "text": h.text,
        "created_at": _time(h.created_at),
        "action": h.action.value,
        "decided_by": h.decided_by,
        "decided_at": rfc3339(h.decided_at),
    }


def parent(p: CommentSummary) -> Json:
    return {
        "comment_id": p.comment_id,
        "text": p.text,
        "author": {"id": p.author_id, "name": p.author_name},
        "action": p.action.value,
        "decided_by": p.decided_by,
        "decided_at": rfc3339(p.decided_at),
        "decision_reason": None if p.decision_reason is None else p.decision_reason.value,
    }


def author_counts(c: AuthorCounts) -> Json:
    return {
        "total": c.total,
        "approved": c.approved,
        "rejected": c.rejected,
        "waiting": c.waiting,
        "reported": c.reported,
    }


def detail(d: Detail) -> Json:
    return {
        "item": item(d.item),
        "history": [history(h) for h in d.history],
        "parent": None if d.parent is None else parent(d.parent),
        "author_counts": None if d.author_counts is None else author_counts(d.author_counts),
        "author_status": None if d.author_status is None else author_mark(d.author_status),
    }


def author_mark(m: AuthorMark) -> Json:
    return {
        "site_id": m.site_id,
        "author_id": m.author_id,
        "status": m.status.value,
        "note": m.note,
        "set_by": m.set_by,
        "set_at": rfc3339(m.set_at),
    }


def audit(a: AuditEntry) -> Json:
    return {
        "id": a.id,
        "at": rfc3339(a.at),
        "actor": a.actor,
        "action": a.action,
        "site_id": a.site_id,
        "comment_id": a.comment_id,
        "detail": a.detail,
    }


def stats(s: SiteStats) -> Json:
    return {
        "site_id": s.stats.site_id,
        "depth": s.stats.depth,
        "claimed": s.stats.claimed,
        "oldest_queued_at": _time(s.stats.oldest_queued_at),
        "oldest_age_seconds": s.oldest_age_seconds,
    }


def bulk_result(r: BulkResult) -> Json:
    return {
        "site_id": r.site_id,
        "comment_id": r.comment_id,
        "ok": r.error is None,
        "item": None if r.item is None else item(r.item),
        "error": None if r.error is None else {"code": r.error.value, "message": r.message},
    }


def identity(who: Identity) -> Json:
    return {
        "id": who.id,
        "role": who.role.value,
        "sites": None if who.sites is None else sorted(who.sites),
    }


def bulk_action(a: BulkAction) -> Json:
    return {
        "id": a.id,
        "site_id": a.site_id,
        "moderator_id": a.moderator_id,
        "action": a.action.value,
        "reason": a.reason.value,
        "note": a.note,
        "status": a.status.value,
        "items": [
            {"comment_id": i.comment_id, "outcome": None if i.outcome is None else i.outcome.value}
            for i in a.items
        ],
        "created_at": rfc3339(a.created_at),
        "apply_at": rfc3339(a.apply_at),
        "finished_at": _time(a.finished_at),
    }


def spot_check_json(e: SpotCheckEstimate) -> dict[str, Any]:
    """One site's estimate for one automatic action, as status and the API give it."""
    return {
        "site_id": e.site_id,
        "auto_action": e.auto_action.value,
        "kind": e.kind,
        "checked": e.checked,
        "overturned": e.overturned,
        "waiting": e.waiting,
        "rate": e.rate,
        "low": None if e.interval is None else e.interval.low,
        "high": None if e.interval is None else e.interval.high,
    }
