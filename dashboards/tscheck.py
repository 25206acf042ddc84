"""Type-check generated dashboards against Grafana's TypeScript types (npm `@grafana/schema`).

Each dashboard becomes `export const d: FinpulseDashboard = <json>;` plus `const g: Dashboard = d;`
and `tsc --noEmit --strict` compiles them. Wrong types, unknown keys and missing required keys fail.
ClickHouse dashboards use `FinpulseDashboard` (typecheck/clickhouse.ts), the Prometheus one
`PrometheusDashboard` (typecheck/prometheus.ts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TYPECHECK_DIR = Path(__file__).resolve().parent / "typecheck"
TSC_FLAGS = ("--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler", "--module", "esnext",
             "--target", "es2022")  # fmt: skip


class TypeCheckError(RuntimeError):
    """npm or tsc missing, or the install failed."""


def ensure_installed(typecheck_dir: Path = TYPECHECK_DIR) -> Path:
    """Install the pinned npm packages when missing; return the tsc executable."""
    tsc = typecheck_dir / "node_modules" / ".bin" / "tsc"
    if tsc.exists() and (typecheck_dir / "node_modules" / "@grafana" / "schema").exists():
        return tsc
    npm = shutil.which("npm")
    if npm is None:
        raise TypeCheckError("npm is not installed: the dashboard type check needs Node.js and npm")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=typecheck_dir, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    if done.returncode != 0 or not tsc.exists():
        raise TypeCheckError(f"npm ci failed in {typecheck_dir}:\n{done.stdout}\n{done.stderr}")
    return tsc


CLICKHOUSE_TYPE = ("clickhouse", "FinpulseDashboard")
PROMETHEUS_TYPE = ("prometheus", "PrometheusDashboard")


def typescript_module(model: Mapping[str, Any], dashboard_type: tuple[str, str] = CLICKHOUSE_TYPE) -> str:
    """The dashboard JSON wrapped as a typed TypeScript constant; `dashboard_type` is (module, type)."""
    module, type_name = dashboard_type
    return (
        "import type { Dashboard } from '@grafana/schema';\n"
        f"import type {{ {type_name} }} from './{module}';\n"
        f"export const d: {type_name} = {json.dumps(model, indent=2, ensure_ascii=False)};\n"
        "export const g: Dashboard = d;\n"
    )


def typecheck(
    models: Mapping[str, Mapping[str, Any]],
    work_dir: Path,
    typecheck_dir: Path = TYPECHECK_DIR,
    dashboard_type: tuple[str, str] = CLICKHOUSE_TYPE,
):
    """Write one module per dashboard under `work_dir` and run tsc; return the CompletedProcess."""
    tsc = ensure_installed(typecheck_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    modules = work_dir / "node_modules"
    if not modules.exists():
        modules.symlink_to(typecheck_dir / "node_modules", target_is_directory=True)
    for types in typecheck_dir.glob("*.ts"):
        shutil.copy(types, work_dir / types.name)
    files = []
    for stem, model in models.items():
        path = work_dir / f"{stem.replace('-', '_')}.ts"
        path.write_text(typescript_module(model, dashboard_type), encoding="utf-8")
        files.append(str(path))
    return subprocess.run([str(tsc), *TSC_FLAGS, *files], cwd=work_dir, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
