"""Bearer tokens for the moderation API.

The tokens file is JSON and holds only SHA-256 hashes of the tokens, never the tokens:

    {"version": 1,
     "tokens": [{"id": "alice", "role": "moderator", "sites": ["herald", "tech-blog"],
                 "sha256": "<64 hex digits>"},
                {"id": "root", "role": "admin", "sites": ["*"], "sha256": "..."}]}

`sites: ["*"]` grants every site. A token is compared in constant time against every hash;
neither the token nor its hash is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from service.domain.access import ALL_SITES, Identity, Role, valid_site_id
from service.domain.errors import ModerationError

FILE_VERSION: Final = 1
_ID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
_MAX_BEARER_CHARS: Final = 512


class TokensFileError(ModerationError):
    """The tokens file is missing, empty or malformed; the message names file and problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"tokens file {path}: {problem}")
        self.path = path
        self.problem = problem


class InvalidTokenSpec(ModerationError):
    """`add_token` was asked for an id, role or site list it cannot store."""


@dataclass(frozen=True, slots=True)
class _Entry:
    identity: Identity
    digest: bytes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenRegistry:
    def __init__(self, entries: Iterable[tuple[Identity, str]]) -> None:
        """`entries`: identities with the hex SHA-256 of their token."""
        self._entries = tuple(
            _Entry(ident, bytes.fromhex(hexdigest)) for ident, hexdigest in entries
        )

    @classmethod
    def load(cls, path: Path) -> TokenRegistry:
        return cls((_identity(e), e["sha256"]) for e in _read_entries(path, allow_missing=False))

    def __len__(self) -> int:
        return len(self._entries)

    def has_admin(self) -> bool:
        return any(entry.identity.is_admin for entry in self._entries)

    def authenticate(self, bearer: str) -> Identity | None:
        if not bearer or len(bearer) > _MAX_BEARER_CHARS:
            return None
        digest = _digest(bearer)
        found: Identity | None = None
        for entry in self._entries:  # every entry, so the time does not say which one matched
            if hmac.compare_digest(digest, entry.digest):
                found = entry.identity
        return found


def _identity(entry: Mapping[str, Any]) -> Identity:
    sites = entry["sites"]
    return Identity(
        id=entry["id"],
        role=Role(entry["role"]),
        sites=None if ALL_SITES in sites else frozenset(sites),
    )


def _valid_sites(sites: object) -> bool:
    return (
        isinstance(sites, list)
        and bool(sites)
        and all(isinstance(s, str) and (s == ALL_SITES or valid_site_id(s)) for s in sites)
    )


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


_RULES: Final[tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...]] = (
    ("'id' must be 1-64 characters of A-Z a-z 0-9 . _ -", lambda e: _matches(_ID_RE, e.get("id"))),
    ("'role' must be 'moderator', 'admin' or 'site'", lambda e: e.get("role") in tuple(Role)),
    (
        "'sites' must be a non-empty list of site ids (A-Z a-z 0-9 . _ -) or [\"*\"]",
        lambda e: _valid_sites(e.get("sites")),
    ),
    ("'sha256' must be 64 lowercase hex digits", lambda e: _matches(_HASH_RE, e.get("sha256"))),
)


def _problem_in(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    return next((problem for problem, ok in _RULES if not ok(entry)), None)


def _read_entries(path: Path, *, allow_missing: bool) -> list[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if allow_missing:
            return []
        raise TokensFileError(
            path, "does not exist (create one with `moderation tokens add`)"
        ) from None
    except OSError as exc:
        raise TokensFileError(path, f"cannot be read: {exc.strerror}") from None
    if not raw.strip():
        if allow_missing:
            return []
        raise TokensFileError(path, "is empty")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokensFileError(path, f"is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        raise TokensFileError(
            path, f'must be a JSON object with "version": {FILE_VERSION} and "tokens"'
        )
    entries = doc.get("tokens")
    if not isinstance(entries, list):
        raise TokensFileError(path, "'tokens' must be a list")
    if not entries and not allow_missing:
        raise TokensFileError(path, "holds no tokens")
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        problem = _problem_in(entry)
        if problem:
            raise TokensFileError(path, f"token #{index + 1}: {problem}")
        if entry["id"] in seen:
            raise TokensFileError(path, f"token #{index + 1}: id {entry['id']!r} appears twice")
        seen.add(entry["id"])
    return entries


def _write_atomically(path: Path, doc: Mapping[str, Any]) -> None:
    data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_token(path: Path, token_id: str, role: str, sites: Sequence[str]) -> str:
    """Append a new token for `token_id` to the tokens file (created, mode 0600, if missing)
    and return the token. Only its hash is stored: this is the one time it is seen."""
    entry: dict[str, Any] = {"id": token_id, "role": role, "sites": list(sites)}
    problem = _problem_in({**entry, "sha256": "0" * 64})
    if problem:
        raise InvalidTokenSpec(problem)
    entries = _read_entries(path, allow_missing=True)
    if any(e["id"] == token_id for e in entries):
        raise InvalidTokenSpec(f"a token with id {token_id!r} already exists in {path}")
    token = secrets.token_urlsafe(32)
    entry["sha256"] = _digest(token).hex()
    _write_atomically(path, {"version": FILE_VERSION, "tokens": [*entries, entry]})
    return token
