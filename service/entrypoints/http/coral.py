"""Coral's external moderation phase: Coral POSTs every new or edited comment, signed with
HMAC-SHA256, and reads back REJECTED or SYSTEM_WITHHELD, or 204: no objection.

The request and answer follow the contract of Coral's external moderation phase
(`phases/external.ts` in coralproject/talk): the body holds `action`, `comment` {`body`,
`parentID`}, `author` {`id`, `role`}, `story` {`id`, `url`}, `site` {`id`}, `tenantID`,
`tenantDomain`; the header `X-Coral-Signature` holds comma-separated `sha256=<hex>` values.

How Coral uses the answer decides what we send:
- any `status` ends Coral's pipeline, so an approval answered `APPROVED` would skip the
  phases after ours (story and site pre-moderation). "No objection" is therefore a 204 (a
  `NONE` status would end the pipeline too), unless the site asks for `APPROVED`;
- a `REJECTED` carries `moderationAction.rejectionReason` (Coral's reason codes and our
  reasons' details), so Coral records why and can tell the author;
- `SYSTEM_WITHHELD` puts the comment in Coral's own queue, where Coral's moderators decide
  it: it does not also join ours;
- the body is HTML unless the phase's format is plain text: we score the text of the HTML.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from service.contracts.codec import is_http_url
from service.domain.errors import ModerationError
from service.domain.html_text import html_to_text
from service.domain.model import (
    Action,
    Comment,
    Decision,
    ModeratorReason,
    Reason,
    ReasonCode,
    Scores,
)

STAFF_ROLES: Final = frozenset({"ADMIN", "MODERATOR", "STAFF"})
_SPAM_CODES: Final = frozenset(
    {
        ReasonCode.SPAM_ABOVE_REJECT,
        ReasonCode.SPAM_UNCERTAIN,
        ReasonCode.CAMPAIGN,
        ReasonCode.BLOCKED_DOMAIN,
        ReasonCode.TOO_MANY_LINKS,
        ReasonCode.FIRST_TIME_AUTHOR_LINK,
        ReasonCode.FLOOD,
    }
)
_TOXIC_CODES: Final = frozenset(
    {
        ReasonCode.ABUSE_ABOVE_REJECT,
        ReasonCode.ABUSE_UNCERTAIN,
        ReasonCode.SEVERE_TOXICITY_ABOVE_REJECT,
        ReasonCode.SEVERE_TOXICITY_UNCERTAIN,
        ReasonCode.INSULT_ABOVE_REJECT,
        ReasonCode.INSULT_UNCERTAIN,
        ReasonCode.THREAT_ABOVE_REJECT,
        ReasonCode.THREAT_UNCERTAIN,
        ReasonCode.IDENTITY_ATTACK_ABOVE_REJECT,
        ReasonCode.IDENTITY_ATTACK_UNCERTAIN,
        ReasonCode.PROFANITY_ABOVE_REJECT,
        ReasonCode.PROFANITY_UNCERTAIN,
        ReasonCode.BLOCKED_TERM,
        ReasonCode.HELD_TERM,
    }
)


# Coral's rejection reason codes (GQLREJECTION_REASON_CODE) for the reasons we reject with;
# anything else is OTHER, and the detailed explanation says what.
_REJECTION_CODES: Final[dict[ReasonCode | ModeratorReason, str]] = {
    ReasonCode.BLOCKED_TERM: "BANNED_WORD",
    ReasonCode.ABUSE_ABOVE_REJECT: "ABUSIVE",
    ReasonCode.SEVERE_TOXICITY_ABOVE_REJECT: "ABUSIVE",
    ReasonCode.INSULT_ABOVE_REJECT: "ABUSIVE",
    ReasonCode.THREAT_ABOVE_REJECT: "ABUSIVE",
    ReasonCode.IDENTITY_ATTACK_ABOVE_REJECT: "ABUSIVE",
    ReasonCode.PROFANITY_ABOVE_REJECT: "OFFENSIVE",
    ReasonCode.SPAM_ABOVE_REJECT: "SPAM",
    ReasonCode.CAMPAIGN: "SPAM",
    ReasonCode.BLOCKED_DOMAIN: "SPAM",
    ReasonCode.FLOOD: "SPAM",
}
_MAX_EXPLANATION: Final = 1000
OTHER_REJECTION: Final = "OTHER"
REJECTION_CODES: Final = (*sorted(set(_REJECTION_CODES.values())), OTHER_REJECTION)
FLAG_TOXIC: Final = "COMMENT_DETECTED_TOXIC"
FLAG_SPAM: Final = "COMMENT_DETECTED_SPAM"


class AnswerStatus(StrEnum):
    """The `status` of our answer to Coral (a 204 says no objection)."""

    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    SYSTEM_WITHHELD = "SYSTEM_WITHHELD"  # waits in Coral's own queue


class StaffPolicy(StrEnum):
    APPROVE = "approve"  # staff comments are approved without scoring
    SCORE = "score"  # staff comments are scored like anyone's


class ApproveAnswer(StrEnum):
    NO_OPINION = "no_opinion"  # 204: Coral's later phases (pre-moderation) still run
    APPROVE = "approve"  # {"status": "APPROVED"}: the comment is published at once


class BodyFormat(StrEnum):
    HTML = "html"  # Coral's default
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class CoralConfig:
    secrets: tuple[bytes, ...]
    budget_seconds: float = 0.12  # below the phase's timeout (Coral's form: 200 ms)
    # Staff who reach the phase are those Coral did not approve itself (a moderator of
    # other sites, say): they are scored unless the site says otherwise.
    staff: StaffPolicy = StaffPolicy.SCORE
    on_approve: ApproveAnswer = ApproveAnswer.NO_OPINION
    body_format: BodyFormat = BodyFormat.HTML


class CoralRequestError(ModerationError):
    pass


def signature_valid(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True if any `sha256=<hex>` value of the header is the HMAC of the body under any of
    the secrets. Every value is compared with every secret, in constant time."""
    if not header or not secrets:
        return False
    expected = [hmac.new(secret, body, hashlib.sha256).hexdigest().encode() for secret in secrets]
    found = False
    for value in header.split(",")[:16]:
        scheme, _, digest = value.strip().partition("=")
        if scheme != "sha256":
            continue
        given = digest.strip().lower().encode("ascii", "replace")[:128]
        for candidate in expected:
            found |= hmac.compare_digest(given, candidate)
    return found


def _text(doc: Mapping[str, Any], path: str) -> str | None:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if node is None:
        return None
    if not isinstance(node, str):
        raise CoralRequestError(f"'{path}' must be a string")
    return node


def comment_id(doc: Mapping[str, Any]) -> str:
    """Coral sends no comment id: ours is derived from the tenant, the story, the parent, the
    author, the action and the body, so the same request asked twice gets one decision, two
    readers posting the same words get one each, and an `EDIT` is decided anew."""
    parts = [
        _text(doc, path) or ""
        for path in ("tenantID", "story.id", "comment.parentID", "author.id", "action")
    ]
    parts.append(_text(doc, "comment.body") or "")
    key = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return f"coral-{hashlib.sha256(key).hexdigest()[:32]}"


def comment_event(raw: bytes, body_format: BodyFormat = BodyFormat.HTML) -> tuple[bytes, bool]:
    """Coral's request as our comment event (JSON bytes), and whether the author is staff."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CoralRequestError("the body is not JSON") from exc
    if not isinstance(doc, dict):
        raise CoralRequestError("the body must be a JSON object")
    body = _text(doc, "comment.body")
    site = _text(doc, "site.id")
    story = _text(doc, "story.id") or ""
    if body is None or site is None:
        raise CoralRequestError("'comment.body' and 'site.id' are required")
    role = _text(doc, "author.role")
    # The story's page is the item's article link. Coral sends no title. A URL that is not
    # http(s) is left out rather than refused: the comment is still moderated in time.
    story_url = _text(doc, "story.url")
    event = {
        "id": comment_id(doc),
        "site_id": site,
        "text": html_to_text(body) if body_format is BodyFormat.HTML else body,
        "thread_id": story or None,
        "parent_id": _text(doc, "comment.parentID"),
        "thread_url": story_url if story_url is not None and is_http_url(story_url) else None,
        "author": {"id": _text(doc, "author.id")},
        "coral": {
            "action": _text(doc, "action"),
            "tenant_id": _text(doc, "tenantID") or "",
            "tenant_domain": _text(doc, "tenantDomain"),
            "story_url": story_url,
            "author_role": role,
        },
    }
    return json.dumps(event).encode(), role in STAFF_ROLES


def staff_approval(comment: Comment, model_version: str, policy_version: str) -> Decision:
    return Decision(
        comment_id=comment.id,
        site_id=comment.site_id,
        action=Action.APPROVE,
        scores=Scores(spam=0.0, abuse=0.0),
        reasons=(
            Reason(ReasonCode.STAFF_AUTHOR, "a Coral staff author: approved without scoring"),
        ),
        model_version=model_version,
        policy_version=policy_version,
    )


def rejection_reason(decision: Decision) -> dict[str, str]:
    """Coral's `rejectionReason`: the code of the first reason that has one (OTHER if none
    does), and every reason's detail as the explanation."""
    code = next(
        (_REJECTION_CODES[r.code] for r in decision.reasons if r.code in _REJECTION_CODES),
        OTHER_REJECTION,
    )
    explanation = "; ".join(r.detail for r in decision.reasons)
    return {"code": code, "detailedExplanation": explanation[:_MAX_EXPLANATION]}


def answer(decision: Decision, on_approve: ApproveAnswer) -> dict[str, Any] | None:
    """Our decision in Coral's words; None: answer 204, no objection."""
    if decision.action is Action.APPROVE:
        return {"status": AnswerStatus.APPROVED} if on_approve is ApproveAnswer.APPROVE else None
    codes = {reason.code for reason in decision.reasons}
    actions = []
    if codes & _TOXIC_CODES:
        actions.append({"actionType": "FLAG", "reason": FLAG_TOXIC})
    if codes & _SPAM_CODES:
        actions.append({"actionType": "FLAG", "reason": FLAG_SPAM})
    reply: dict[str, Any] = {"status": AnswerStatus.SYSTEM_WITHHELD}
    if decision.action is Action.REJECT:
        reply = {
            "status": AnswerStatus.REJECTED,
            "moderationAction": {
                "status": AnswerStatus.REJECTED,
                "rejectionReason": rejection_reason(decision),
            },
        }
    if actions:
        reply["actions"] = actions
    return reply
