"""Generated dashboards compile against Grafana's published TypeScript types (@grafana/schema + tsc);
wrong types, unknown keys and missing required keys fail. Needs Node.js/npm: fails, never skips."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dashboards.generate import dashboards, market_sentiment
from dashboards.model import GRAFANA_VERSION
from dashboards.prometheus import pipeline_dashboard
from dashboards.tscheck import PROMETHEUS_TYPE, TYPECHECK_DIR, TypeCheckError, ensure_installed, typecheck


@pytest.fixture(scope="module")
def tsc() -> Path:
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the Grafana type check cannot run")
    try:
        return ensure_installed()
    except TypeCheckError as exc:
        pytest.fail(str(exc))


def test_schema_pin_matches_grafana_image() -> None:
    package = json.loads((TYPECHECK_DIR / "package.json").read_text())
    lock = json.loads((TYPECHECK_DIR / "package-lock.json").read_text())
    assert package["devDependencies"]["@grafana/schema"] == GRAFANA_VERSION
    assert lock["packages"]["node_modules/@grafana/schema"]["version"] == GRAFANA_VERSION


def test_generated_dashboards_typecheck(tsc: Path, tmp_path: Path) -> None:
    installed = json.loads((TYPECHECK_DIR / "node_modules/@grafana/schema/package.json").read_text())
    assert installed["version"] == GRAFANA_VERSION
    done = typecheck(dashboards(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def _set(path: str, value: object) -> Callable[[dict], None]:
    def apply(model: dict) -> None:
        *parents, last = path.split(".")
        node = model
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return apply


_DELETE = object()
BROKEN = {
    "wrong_type_gridpos": _set("panels.5.gridPos.w", "12"),
    "wrong_type_refresh": _set("templating.list.0.refresh", "on load"),
    "unknown_panel_key": _set("panels.5.titel", "typo"),
    "unknown_dashboard_key": _set("timeZone", "utc"),
    "unknown_variable_key": _set("templating.list.0.definition", "SELECT 1"),
    "unknown_query_key": _set("panels.5.targets.0.rawSQL", "SELECT 1"),
    "wrong_query_format": _set("panels.5.targets.0.format", 7),
    "missing_schema_version": _set("schemaVersion", _DELETE),
    "missing_panel_type": _set("panels.5.type", _DELETE),
    "missing_annotation_icon": _set("annotations.list.0.iconColor", _DELETE),
    "missing_raw_sql": _set("annotations.list.0.target.rawSql", _DELETE),
}


def test_broken_dashboards_fail_the_typecheck(tsc: Path, tmp_path: Path) -> None:
    models = {}
    for name, breakage in BROKEN.items():
        model = copy.deepcopy(market_sentiment())
        breakage(model)
        models[name] = model
    done = typecheck(models, tmp_path)
    assert done.returncode != 0
    failing = set(re.findall(r"^(\w+)\.ts\(\d+,\d+\): error TS\d+", done.stdout, re.MULTILINE))
    assert failing == set(BROKEN), f"not caught: {set(BROKEN) - failing}\n{done.stdout}"


def test_missing_npm_is_an_error_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(TYPECHECK_DIR / "package.json", tmp_path / "package.json")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(TypeCheckError, match="npm is not installed"):
        ensure_installed(tmp_path)


PROMETHEUS_BROKEN = {
    "prom_unknown_query_key": _set("panels.0.targets.0.exp", "up"),
    "prom_wrong_format": _set("panels.0.targets.0.format", "wide"),
    "prom_missing_expr": _set("panels.0.targets.0.expr", _DELETE),
    "prom_wrong_instant": _set("panels.0.targets.0.instant", "yes"),
}


def test_prometheus_dashboard_typechecks_and_catches_mistakes(tsc: Path, tmp_path: Path) -> None:
    done = typecheck(
        {"pipeline_metrics": pipeline_dashboard()}, tmp_path / "good", dashboard_type=PROMETHEUS_TYPE
    )
    assert done.returncode == 0, done.stdout + done.stderr
    models = {}
    for name, breakage in PROMETHEUS_BROKEN.items():
        model = copy.deepcopy(pipeline_dashboard())
        breakage(model)
        models[name] = model
    done = typecheck(models, tmp_path / "broken", dashboard_type=PROMETHEUS_TYPE)
    failing = set(re.findall(r"^(\w+)\.ts\(\d+,\d+\): error TS\d+", done.stdout, re.MULTILINE))
    assert failing == set(PROMETHEUS_BROKEN), f"not caught: {set(PROMETHEUS_BROKEN) - failing}\n{done.stdout}"
