"""Outside development mode the service will not start with an unprotected API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from service.adapters.token_file import TokenRegistry, add_token
from service.bootstrap import StartupError, check_tokens
from service.settings import Settings


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({f"MODERATION_{k}": v for k, v in env.items()}, cwd=tmp_path)


def file_with(tmp_path: Path, *entries: tuple[str, str, str]) -> Path:
    """A tokens file holding these (id, role, token) entries, as an operator might write."""
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "tokens": [
                    {
                        "id": i,
                        "role": r,
                        "sites": ["*"],
                        "sha256": hashlib.sha256(t.encode()).hexdigest(),
                    }
                    for i, r, t in entries
                ],
            }
        )
    )
    return path


def test_a_tokens_file_with_a_random_admin_token_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "root", "admin", ["*"])

    check_tokens(TokenRegistry.load(path), settings(tmp_path, TOKENS_FILE=str(path)))


def test_no_tokens_file_is_refused_outside_development_mode(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="no MODERATION_TOKENS_FILE"):
        check_tokens(TokenRegistry(()), settings(tmp_path))

    check_tokens(TokenRegistry(()), settings(tmp_path, DEV_MODE="true"))


def test_a_file_without_an_admin_token_is_refused_outside_development_mode(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.json"
    add_token(path, "alice", "moderator", ["herald"])

    with pytest.raises(StartupError, match="has no admin token"):
        check_tokens(TokenRegistry.load(path), settings(tmp_path, TOKENS_FILE=str(path)))
    check_tokens(TokenRegistry.load(path), settings(tmp_path, TOKENS_FILE=str(path), DEV_MODE="1"))


@pytest.mark.parametrize("weak", ["admin", "changeme", "password", "secret"])
def test_a_well_known_token_is_refused_even_in_development_mode(tmp_path: Path, weak: str) -> None:
    path = file_with(tmp_path, ("root", "admin", weak))

    for dev in ("false", "true"):
        with pytest.raises(StartupError, match="well-known token"):
            check_tokens(
                TokenRegistry.load(path), settings(tmp_path, TOKENS_FILE=str(path), DEV_MODE=dev)
            )
