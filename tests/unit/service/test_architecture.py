"""The folders are the architecture: these tests keep them honest."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[3]
IO_LIBRARIES = {
    "aiokafka",
    "aiohttp",
    "sqlite3",
    "asyncpg",
    "psycopg",
    "sklearn",
    "numpy",
    "prometheus_client",
    "classifier",
    "py3langid",
    "socket",
    "os",
    "asyncio",
    "logging",
}


def imported_modules(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_domain_imports_no_io_library() -> None:
    assert imported_modules(ROOT / "service" / "domain") & IO_LIBRARIES == set()


def test_no_module_of_the_service_imports_itself_through_others() -> None:
    # Between packages, `lint-imports` (pyproject.toml) keeps the layers; this is the module level.
    graph = grimp.build_graph("service")
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(imported, importer)
    )
    assert cycles == []


def test_classifier_never_imports_the_service() -> None:
    assert "service" not in imported_modules(ROOT / "classifier")


@pytest.mark.parametrize(
    "module",
    [
        "service.__main__",
        "service.bootstrap",
        "service.entrypoints.serve.run",
        "service.usecases.pipeline",
        "service.entrypoints.kafka.pipeline_loop",
    ],
)
def test_importing_connects_to_nothing_and_reads_no_settings(module: str) -> None:
    # A broken environment must not matter at import time: nothing is read or opened then.
    env = {"MODERATION_HTTP_PORT": "not-a-port", "MODERATION_KAFKA_BOOTSTRAP": "nowhere"}
    code = f"import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env | {"PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Code layout")
    return readme[start : readme.index("\n## ", start)]


def test_the_readme_layout_names_every_package_and_top_level_module() -> None:
    layout = _layout_section()
    service = ROOT / "service"
    packages = sorted(
        p.parent.relative_to(service) for p in service.rglob("__init__.py") if p.parent != service
    )
    missing = [
        str(p)
        for p in packages
        # a layer as `service/<layer>/`, a package inside one by its own name
        if f"`service/{p}/`" not in layout and f"`{p.name}/`" not in layout
    ]
    loose = sorted(p.name for p in service.glob("*.py") if p.name != "__init__.py")
    missing += [name for name in loose if f"`service/{name}`" not in layout]
    assert not missing, f"README's code layout does not name: {missing}"
    assert len(loose) <= 6  # the limit on loose modules at the top of service/
