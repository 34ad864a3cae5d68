"""`moderation tokens add`, as the README shows it: site tokens included."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.adapters.token_file import TokenRegistry
from service.domain.access import Role
from service.entrypoints.cli.main import main


@pytest.mark.parametrize(
    "case",
    [
        ("site", "herald", frozenset({"herald"})),
        ("site", "herald,tech-blog", frozenset({"herald", "tech-blog"})),
        ("moderator", "herald", frozenset({"herald"})),
        ("admin", "*", None),
    ],
)
def test_tokens_add_makes_a_token_of_the_role_for_the_sites(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, frozenset[str] | None],
) -> None:
    role, sites, expected = case
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("MODERATION_TOKENS_FILE", str(path))

    code = main(["tokens", "add", "--id", "herald-cms", "--role", role, "--sites", sites])

    assert code == 0
    token = capsys.readouterr().out.strip()
    identity = TokenRegistry.load(path).authenticate(token)
    assert identity is not None
    assert (identity.id, identity.role, identity.sites) == ("herald-cms", Role(role), expected)
    assert token not in path.read_text()  # only its hash is kept


def test_an_unknown_role_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODERATION_TOKENS_FILE", str(tmp_path / "tokens.json"))

    with pytest.raises(SystemExit) as exited:
        main(["tokens", "add", "--id", "x", "--role", "owner", "--sites", "herald"])

    assert exited.value.code == 2
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    assert not (tmp_path / "tokens.json").exists()
