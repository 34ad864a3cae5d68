"""Who may do what: the roles and identities tokens grant, the error a refused caller gets, and
the site check the moderators' use cases share. Pure: the tokens file is read by
`service/adapters/token_file.py`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from service.domain.errors import ModerationError

ALL_SITES: Final = "*"
_SITE_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")


class Role(StrEnum):
    MODERATOR = "moderator"
    ADMIN = "admin"
    # a site's backend: may only submit comments (POST /api/v1/moderate) and be a
    # Perspective API key for its sites
    SITE = "site"


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    role: Role
    sites: frozenset[str] | None  # None: every site

    def can_see(self, site_id: str) -> bool:
        return self.sites is None or site_id in self.sites

    @property
    def actor(self) -> str:
        """How audit entries name this caller."""
        return f"{self.role.value}:{self.id}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def valid_site_id(value: str) -> bool:
    """A site id as tokens (and comment events) spell it: 1-128 of A-Z a-z 0-9 . _ -"""
    return _SITE_RE.fullmatch(value) is not None


class AccessDenied(ModerationError):
    """The caller may not do this: a site outside its scope, or a role it does not have."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def site_denied(site_id: str) -> AccessDenied:
    return AccessDenied("forbidden_site", f"this token does not grant site {site_id!r}")


def require_moderator_of(who: Identity, site_id: str | None) -> None:
    """A moderator or admin token, granting `site_id` if one is named."""
    if who.role is Role.SITE:
        raise AccessDenied("forbidden_role", "a site token only submits comments")
    if site_id is not None and not who.can_see(site_id):
        raise site_denied(site_id)
