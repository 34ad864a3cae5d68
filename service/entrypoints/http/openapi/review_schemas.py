"""The review API's component schemas: a comment, an item of the queue and its detail, a
decision, the audit log, statistics."""

from __future__ import annotations

from service.contracts.codec import COMMENT_SCHEMA
from service.domain.model import Action, ModeratorReason, SubScore
from service.domain.review import ReviewStatus
from service.entrypoints.http import parse
from service.entrypoints.http.openapi.integrations import event_schema
from service.entrypoints.http.openapi.shapes import (
    COMMENT_ID,
    REASON_CODES,
    SCORE,
    SITE_ID,
    Json,
    closed,
    enum,
    nullable,
    ref,
    string_or_null,
    time_or_null,
)

VERDICT: Json = {
    "action": {"type": "string", "enum": list(parse.DECISION_ACTIONS)},
    "reason": {
        "type": ["string", "null"],
        "enum": [*(r.value for r in ModeratorReason), None],
        "description": "why, in the moderator's words: it becomes the comment's training "
        "label (spam, abuse; an approval is ok whatever this says; off_topic, personal_info "
        "and other are not learned from). Left out or null: ok for approve; other for reject, "
        "and that label is recorded as guessed, not the moderator's, so retraining leaves it "
        "out. Send the reason the moderator chose, never one derived from the scores.",
    },
    "note": {"type": ["string", "null"], "maxLength": parse.MAX_NOTE},
}

SCHEMAS: Json = {
    "Reason": closed({"code": enum(REASON_CODES), "detail": {"type": "string"}}),
    "Item": closed(
        {
            "site_id": SITE_ID,
            "comment_id": {"type": "string"},
            "text": {"type": "string", "description": "as received: untrusted, render as text"},
            "author": closed({"id": string_or_null(), "name": string_or_null()}),
            "thread_id": string_or_null(),
            "created_at": time_or_null(),
            "scores": closed(
                {"spam": SCORE, "abuse": SCORE} | {name.value: SCORE for name in SubScore},
                required=["spam", "abuse"],
            )
            | {"description": "the abuse sub-scores only when the model gives them"},
            "language": nullable(
                closed(
                    {
                        "code": {"type": "string", "pattern": "^[a-z]{2,3}$"},
                        "detected": {"type": "boolean"},
                    }
                )
            )
            | {
                "description": "the comment's language: its event's lang (detected false) or "
                "the detector's (und: could not tell); null when neither was available"
            },
            "risk": {**SCORE, "description": "max(spam, abuse)"},
            "reasons": {"type": "array", "items": ref("Reason")},
            "model_version": {"type": "string"},
            "policy_version": {"type": "string"},
            "queued_at": {"type": "string", "format": "date-time"},
            "status": enum(ReviewStatus),
            "claimed_by": string_or_null(description="moderator id, while the lease runs"),
            "claim_expires_at": time_or_null(),
            "decision": string_or_null(enum=[*parse.DECISION_ACTIONS, None]),
            "decided_by": string_or_null(),
            "decided_at": time_or_null(),
            "decision_reason": string_or_null(enum=[*(r.value for r in ModeratorReason), None]),
            "note": string_or_null(),
            "report_weight": {
                "type": "number",
                "minimum": 0,
                "description": "summed reliability of the readers who reported it this round "
                "(claim with order=reports to take the most credible first)",
            },
            "parent_id": string_or_null(
                description="the comment it answers, on the same site (the detail's parent)"
            ),
            "thread_url": string_or_null(
                format="uri",
                pattern=event_schema(COMMENT_SCHEMA)["properties"]["thread_url"]["pattern"],
                description="the article's address: an http or https URL (the comment event "
                "1.1 refuses any other); untrusted, link it only with rel=noopener noreferrer",
            ),
            "thread_title": string_or_null(
                description="the article's title: untrusted, render as text"
            ),
        }
    ),
    "ParentComment": closed(
        {
            "comment_id": {"type": "string"},
            "text": {"type": "string", "description": "untrusted, render as text"},
            "author": closed({"id": string_or_null(), "name": string_or_null()}),
            "action": enum(Action) | {"description": "the latest decision; review: it waits"},
            "decided_by": {"type": "string", "description": "auto or moderator:<id>"},
            "decided_at": {"type": "string", "format": "date-time"},
            "decision_reason": string_or_null(enum=[*(r.value for r in ModeratorReason), None]),
        }
    ),
    "AuthorCounts": closed(
        {
            name: {"type": "integer", "minimum": 0, "description": text}
            for name, text in (
                ("total", "the author's comments on this site, this one included"),
                ("approved", "whose latest decision is approve"),
                ("rejected", "whose latest decision is reject"),
                ("waiting", "in review"),
                ("reported", "that readers reported, once or more"),
            )
        }
    ),
    "HistoryEntry": closed(
        {
            "comment_id": {"type": "string"},
            "text": {"type": "string"},
            "created_at": time_or_null(),
            "action": enum(Action),
            "decided_by": {"type": "string"},
            "decided_at": {"type": "string", "format": "date-time"},
        }
    ),
    "AuditEntry": closed(
        {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "site_id": string_or_null(),
            "comment_id": string_or_null(),
            "detail": {"type": "string"},
        }
    ),
    "SiteStats": closed(
        {
            "site_id": SITE_ID,
            "depth": {"type": "integer", "minimum": 0},
            "claimed": {"type": "integer", "minimum": 0},
            "oldest_queued_at": time_or_null(),
            "oldest_age_seconds": {"type": ["number", "null"], "minimum": 0},
        }
    ),
    "SpotCheckEstimate": closed(
        {
            "site_id": SITE_ID,
            "auto_action": enum(["approve", "reject"]),
            "kind": enum(["false_approve", "false_reject"]),
            "checked": {"type": "integer", "minimum": 0},
            "overturned": {"type": "integer", "minimum": 0},
            "waiting": {"type": "integer", "minimum": 0},
            "rate": nullable(SCORE),
            "low": nullable(SCORE),
            "high": nullable(SCORE),
        }
    ),
    "Readiness": closed(
        {
            "status": enum(["ok", "unavailable"]),
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        }
    ),
    "Verdict": closed(VERDICT, required=["action"]),
    "BulkDecision": closed(
        {"site_id": SITE_ID, "comment_id": COMMENT_ID, **VERDICT},
        required=["site_id", "comment_id", "action"],
    ),
    "BulkResult": closed(
        {
            "site_id": {"type": "string"},
            "comment_id": {"type": "string"},
            "ok": {"type": "boolean"},
            "item": nullable(ref("Item")),
            "error": nullable(
                closed(
                    {
                        "code": {
                            "type": "string",
                            "enum": [
                                "not_found",
                                "already_decided",
                                "claimed_by_other",
                                "forbidden_site",
                                "invalid_decision",
                                "unavailable",
                            ],
                        },
                        "message": {"type": "string"},
                    }
                )
            ),
        }
    ),
}
