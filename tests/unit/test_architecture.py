"""The house rules of docs/architecture.md: imports only downward, one name per concept, small modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "finpulse",
    "bench",
    "devstack",
    "stream_app",
    "alerts",
    "dashboards",
    "storage",
    "models",
    "ingest",
)
# The same role in every package, like __init__.py: its CLI, settings, Prometheus metrics, test fixtures.
ROLE_NAMES = {"__init__.py", "__main__.py", "cli.py", "settings.py", "metrics.py", "conftest.py"}
MAX_MODULE_LINES = 500


def _modules() -> list[Path]:
    return sorted(
        path
        for top in (*PACKAGES, "tests")
        for path in (ROOT / top).rglob("*.py")
        if "node_modules" not in path.parts
    )


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_packages_import_only_downward() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_deliberate_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for top in PACKAGES:
        shutil.copytree(
            ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("node_modules", "*.jsonl", "data")
        )
    schema = tmp_path / "ingest" / "schema.py"
    schema.write_text(
        schema.read_text() + "\nimport alerts.detector  # noqa: E402,F401  deliberate upward import\n"
    )

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "ingest.schema -> alerts.detector" in result.stdout


def test_no_two_modules_share_a_file_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        if path.name not in ROLE_NAMES:
            by_name[path.name].append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"one name per concept: {shared}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"
