"""Bearer tokens: stored as hashes, refused when the file is broken, scoped to sites."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from service.adapters.token_file import InvalidTokenSpec, TokenRegistry, TokensFileError, add_token
from service.domain.access import Identity, Role


def test_added_token_authenticates_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = add_token(path, "alice", "moderator", ["herald", "tech-blog"])
    text = path.read_text()
    assert token not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    who = TokenRegistry.load(path).authenticate(token)
    assert who == Identity("alice", Role.MODERATOR, frozenset({"herald", "tech-blog"}))
    assert who.can_see("herald")
    assert not who.can_see("other")


def test_tokens_are_appended_and_each_maps_to_its_identity(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    alice = add_token(path, "alice", "moderator", ["herald"])
    root = add_token(path, "root", "admin", ["*"])
    registry = TokenRegistry.load(path)
    assert len(registry) == 2
    assert registry.authenticate(alice) == Identity("alice", Role.MODERATOR, frozenset({"herald"}))
    admin = registry.authenticate(root)
    assert admin is not None
    assert admin.sites is None
    assert admin.can_see("anything")
    assert registry.authenticate(alice + "x") is None
    assert registry.authenticate("") is None


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    add_token(tmp_path / "tokens.json", "alice", "moderator", ["herald"])
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


@pytest.mark.parametrize(
    ("token_id", "role", "sites"),
    [
        ("alice", "superuser", ["herald"]),
        ("al ice", "moderator", ["herald"]),
        ("alice", "moderator", []),
        ("alice", "moderator", ["bad site"]),
    ],
)
def test_add_token_refuses_what_it_cannot_store(
    tmp_path: Path, token_id: str, role: str, sites: list[str]
) -> None:
    with pytest.raises(InvalidTokenSpec):
        add_token(tmp_path / "tokens.json", token_id, role, sites)
    assert not (tmp_path / "tokens.json").exists()


def test_add_token_refuses_a_duplicate_id(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "alice", "moderator", ["herald"])
    with pytest.raises(InvalidTokenSpec, match="already exists"):
        add_token(path, "alice", "admin", ["*"])


ENTRY = {"id": "alice", "role": "moderator", "sites": ["herald"], "sha256": "ab" * 32}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("  \n", "is empty"),
        ("{not json", "is not valid JSON"),
        ("[]", '"version": 1'),
        (json.dumps({"version": 1, "tokens": []}), "holds no tokens"),
        (json.dumps({"version": 1, "tokens": {}}), "'tokens' must be a list"),
        (json.dumps({"version": 1, "tokens": [{**ENTRY, "sha256": "xyz"}]}), "'sha256'"),
        (json.dumps({"version": 1, "tokens": [{**ENTRY, "role": ["admin"]}]}), "'role'"),
        (json.dumps({"version": 1, "tokens": [{**ENTRY, "sites": "herald"}]}), "'sites'"),
        (json.dumps({"version": 1, "tokens": [ENTRY, ENTRY]}), "appears twice"),
    ],
)
def test_loading_refuses_a_broken_file_naming_file_and_problem(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "tokens.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokensFileError) as caught:
        TokenRegistry.load(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_overlong_bearer_is_refused_without_hashing_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "alice", "moderator", ["herald"])
    assert TokenRegistry.load(path).authenticate("x" * 10_000) is None
