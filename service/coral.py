"""Coral's external moderation phase: Coral POSTs every new or edited comment, signed with
HMAC-SHA256, and reads back APPROVED, REJECTED or SYSTEM_WITHHELD (or 204: no opinion).

The request and answer follow the contract of Coral's external moderation phase
(`phases/external.ts` in coralproject/talk): the body holds `action`, `comment` {`body`,
`parentID`}, `author` {`id`, `role`}, `story` {`id`, `url`}, `site` {`id`}, `tenantID`,
`tenantDomain`; the header `X-Coral-Signature` holds comma-separated `sha256=<hex>` values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from service.domain.errors import ModerationError
from service.domain.model import Action, Comment, Decision, Reason, ReasonCode, Scores

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
        ReasonCode.BLOCKED_TERM,
        ReasonCode.HELD_TERM,
    }
)


class StaffPolicy(StrEnum):
    APPROVE = "approve"  # staff comments are approved without scoring
    SCORE = "score"  # staff comments are scored like anyone's


@dataclass(frozen=True, slots=True)
class CoralConfig:
    secrets: tuple[bytes, ...]
    budget_seconds: float = 0.2
    staff: StaffPolicy = StaffPolicy.APPROVE


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


def comment_event(raw: bytes) -> tuple[bytes, bool]:
    """Coral's request as our comment event (JSON bytes), and whether the author is staff.

    Coral sends no comment id: it is derived from the tenant, the story and the body, so the
    same comment asked twice gets one decision."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CoralRequestError("the body is not JSON") from exc
    if not isinstance(doc, dict):
        raise CoralRequestError("the body must be a JSON object")
    body = _text(doc, "comment.body")
    site = _text(doc, "site.id")
    tenant = _text(doc, "tenantID") or ""
    story = _text(doc, "story.id") or ""
    if body is None or site is None:
        raise CoralRequestError("'comment.body' and 'site.id' are required")
    digest = hashlib.sha256(f"{tenant}\x1f{story}\x1f{body}".encode()).hexdigest()[:32]
    role = _text(doc, "author.role")
    event = {
        "id": f"coral-{digest}",
        "site_id": site,
        "text": body,
        "thread_id": story or None,
        "parent_id": _text(doc, "comment.parentID"),
        "author": {"id": _text(doc, "author.id")},
        "coral": {
            "action": _text(doc, "action"),
            "tenant_id": tenant,
            "tenant_domain": _text(doc, "tenantDomain"),
            "story_url": _text(doc, "story.url"),
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


def answer(decision: Decision) -> dict[str, Any]:
    """Our decision in Coral's words."""
    status = {
        Action.APPROVE: "APPROVED",
        Action.REJECT: "REJECTED",
        Action.REVIEW: "SYSTEM_WITHHELD",  # waits in Coral's own queue
    }[decision.action]
    if decision.action is Action.APPROVE:
        return {"status": status}
    codes = {reason.code for reason in decision.reasons}
    actions = []
    if codes & _TOXIC_CODES:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"})
    if codes & _SPAM_CODES:
        actions.append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
    return {"status": status, "actions": actions} if actions else {"status": status}
