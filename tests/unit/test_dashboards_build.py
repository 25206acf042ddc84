"""Generated dashboards: checked-in files are current, structure is sound, every query is used."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from dashboards import panel_sql as q
from dashboards.cli import app
from dashboards.generate import PACKAGE_DIR, dashboards, rendered_files
from dashboards.model import DATASOURCE, FORMAT


def test_checked_in_files_equal_generator_output() -> None:
    for relative, text in rendered_files().items():
        path = PACKAGE_DIR / relative
        assert path.exists(), f"{relative} missing: run `finpulse grafana build`"
        assert path.read_text(encoding="utf-8") == text, f"{relative} is stale: run `finpulse grafana build`"
    checked_in = {p.relative_to(PACKAGE_DIR).as_posix() for p in (PACKAGE_DIR / "json").glob("*.json")}
    assert checked_in == {r for r in rendered_files() if r.startswith("json/")}


def test_cli_build_writes_every_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path), "--database", "other"])
    assert result.exit_code == 0, result.output
    for relative, text in rendered_files("other").items():
        assert (tmp_path / relative).read_text(encoding="utf-8") == text
    assert "FROM other.classifications" in (tmp_path / "json/market-sentiment.json").read_text()


def _targets(model: dict) -> list[dict]:
    return [t for p in model["panels"] for t in p.get("targets", [])] + [
        a["target"] for a in model["annotations"]["list"]
    ]


def test_layout_ids_and_datasources() -> None:
    for stem, model in dashboards().items():
        panels = model["panels"]
        assert [p["id"] for p in panels] == list(range(1, len(panels) + 1)), stem
        cells = set()
        for panel in panels:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, f"{stem}/{panel['title']} wider than the grid"
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & area, f"{stem}/{panel['title']} overlaps another panel"
            cells |= area
        for target in _targets(model):
            assert target["datasource"] == DATASOURCE and target["editorType"] == "sql"
            assert "$__timeInterval" not in target["rawSql"], "expands to toStartOfInterval (not in 18.16)"
        assert all(v["datasource"] == DATASOURCE for v in model["templating"]["list"])


def test_variables_and_formats() -> None:
    models = dashboards()
    market = models["market-sentiment"]
    variables = {v["name"]: v for v in market["templating"]["list"]}
    assert set(variables) == {"run", "topic", "source", "ticker"}
    assert variables["run"]["query"] == "SELECT DISTINCT run_id FROM finpulse.classifications"
    assert variables["run"]["current"]["value"] == "live"
    assert variables["topic"]["multi"] and variables["topic"]["includeAll"]
    assert [v["name"] for v in models["pipeline-health"]["templating"]["list"]] == ["run"]
    by_sql = {query.render("finpulse"): query for query in q.all_queries()}
    used = set()
    for model in models.values():
        for target in _targets(model):
            query = by_sql[target["rawSql"]]
            assert target["format"] == FORMAT[query.kind]
            used.add(query.name)
        used |= {by_sql[v["query"]].name for v in model["templating"]["list"]}
    assert used == {query.name for query in by_sql.values()}, "a query in dashboards.panel_sql is unused"


def test_timeseries_queries_start_with_time() -> None:
    for query in q.all_queries():
        if query.kind == "timeseries":
            assert query.columns[0] == "time" and "ORDER BY time" in query.sql, query.name


def test_provisioning_points_at_mounted_paths() -> None:
    files = {path: yaml.safe_load(text) for path, text in rendered_files().items() if path.endswith(".yaml")}
    (source,) = files["provisioning/datasources/finpulse-clickhouse.yaml"]["datasources"]
    assert source["uid"] == DATASOURCE["uid"] and source["type"] == DATASOURCE["type"]
    assert source["jsonData"]["host"] == "${FINPULSE_CLICKHOUSE_HOST}"
    assert source["secureJsonData"]["password"] == "${FINPULSE_CLICKHOUSE_PASSWORD}"
    (provider,) = files["provisioning/dashboards/finpulse.yaml"]["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards/finpulse"
