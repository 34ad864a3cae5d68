"""Who may do what: the error a refused caller gets, and the site check the moderators' use
cases share."""

from __future__ import annotations

from service.adapters.token_file import Identity, Role
from service.domain.errors import ModerationError


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
