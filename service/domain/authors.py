"""Authors a site's moderators trust or block, kept in the review store (so every instance
sees them) beside the policy file's `authors.trusted` / `authors.blocked`. Pure values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service.domain.errors import ModerationError

AuthorKey = tuple[str, str]  # (site_id, author_id)


class AuthorStatus(StrEnum):
    TRUSTED = "trusted"  # approved without scoring, unless a reject rule applies
    BLOCKED = "blocked"  # rejected, reason `blocked_author`


@dataclass(frozen=True, slots=True)
class AuthorMark:
    """One author's status on one site, who set it and when."""

    site_id: str
    author_id: str
    status: AuthorStatus
    note: str | None
    set_by: str  # the actor: "moderator:<id>" or "admin:<id>"
    set_at: datetime


# What the pipeline reads from the store for a batch: the status of each of its authors
# that has one.
AuthorStatuses = Mapping[AuthorKey, AuthorStatus]


def author_audit_action(status: AuthorStatus, *, set_: bool) -> str:
    """The audit log's action for setting (or lifting) a status: trust_author, block_author,
    untrust_author, unblock_author."""
    verb = "trust" if status is AuthorStatus.TRUSTED else "block"
    return f"{verb}_author" if set_ else f"un{verb}_author"


def author_audit_detail(
    author_id: str, status: AuthorStatus | None, note: str | None, before: AuthorMark | None
) -> str:
    """What the audit entry says: the author, the new status (None: lifted), the note, and
    what it replaced."""
    said = f"author {author_id!r}: " + (status.value if status else "no longer " + _was(before))
    if note:
        said += f"; note: {note}"
    if before is not None and status is not None:
        said += f" (was {before.status.value}, set by {before.set_by})"
    elif before is not None:
        said += f" (set by {before.set_by})"
    return said[:4000]


def _was(before: AuthorMark | None) -> str:
    return "trusted or blocked" if before is None else before.status.value


class NoAuthorStatus(ModerationError):
    """The author is neither trusted nor blocked on the site (in the store)."""

    def __init__(self, site_id: str, author_id: str) -> None:
        super().__init__(f"author {author_id[:64]!r} has no status on site {site_id!r}")
        self.site_id = site_id
        self.author_id = author_id
