"""deploy/needs.sh, which `make test` and `.ci/run` start with: on a machine without the
packages the tests need, a user who is not root gets one line naming them and the command
that installs them, at once, and a failing exit status."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# The commands the script itself runs, kept; every package it checks for is left out.
KEPT = ["bash", "python3", "env", "cat"]


def test_a_user_without_the_packages_gets_one_line_naming_them(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in KEPT:
        found = shutil.which(name)
        assert found is not None, name
        (bin_dir / name).symlink_to(found)
    fake_id = bin_dir / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")  # not root: nothing is installed
    fake_id.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MODERATION_TEST_DATABASE_URL"}
    result = subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / "deploy" / "needs.sh")],
        env=env | {"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    missing, _, command = lines[0].partition("; install them with: ")
    expected = ["make", "openjdk-17-jre-headless", "maven", "kcat", "postgresql", "prometheus"]
    expected += ["nodejs", "npm"]
    for package in expected:
        assert package in missing.split(), lines[0]
    assert command.split()[:4] == ["sudo", "apt-get", "install", "-y"]
    assert set(command.split()[4:]) == set(missing.split(": ")[1].split())


def test_nothing_missing_passes_quietly() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "needs.sh")],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
