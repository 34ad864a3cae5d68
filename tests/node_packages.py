"""The third-party JavaScript packages the tests use, installed from tests/node's lockfile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


def install_node_packages(folder: Path, *extra_files: str) -> Path:
    """`npm ci` of tests/node's package.json and lockfile into `folder`, with `extra_files`
    of tests/node copied beside them; returns `folder`. No node or npm: the test fails."""
    if shutil.which("node") is None or (npm := shutil.which("npm")) is None:
        pytest.fail("node and npm are needed (Debian: apt-get install nodejs npm)")
    for name in ("package.json", "package-lock.json", *extra_files):
        shutil.copy(NODE_DIR / name, folder / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder
