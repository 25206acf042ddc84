"""Small builders for Grafana dashboard JSON (classic dashboard model, schemaVersion 41).

Only keys that Grafana's published TypeScript types know are emitted; string-enum fields
(`color.mode`, `thresholds.mode`, value mappings) are left to Grafana's defaults, because the type
check would otherwise need enum members instead of JSON strings.
"""

from __future__ import annotations

from typing import Any

from dashboards.panel_sql import PanelQuery

GRAFANA_VERSION = "12.4.11"  # docker image tag; equals @grafana/schema in typecheck/package.json
PLUGIN_ID = "grafana-clickhouse-datasource"
DATASOURCE_UID = "finpulse-clickhouse"
DATASOURCE = {"type": PLUGIN_ID, "uid": DATASOURCE_UID}
SCHEMA_VERSION = 41
FORMAT = {"timeseries": 0, "table": 1, "annotation": 1}  # sqlds: 0 time series (long to wide), 1 table

Json = dict[str, Any]


def target(query: PanelQuery, database: str, ref_id: str = "A") -> Json:
    """A grafana-clickhouse-datasource SQL-editor query."""
    return {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "editorType": "sql",
        "format": FORMAT[query.kind],
        "queryType": "timeseries" if query.kind == "timeseries" else "table",
        "rawSql": query.render(database),
    }


def _field_config(
    unit: str, custom: Json | None = None, overrides: list[Json] | None = None, **defaults
) -> Json:
    return {"defaults": {"unit": unit, "custom": custom or {}, **defaults}, "overrides": overrides or []}


def timeseries(
    title: str,
    query: PanelQuery,
    database: str,
    grid: tuple[int, int, int, int],
    unit: str = "short",
    bars: bool = False,
    description: str = "",
    overrides: list[Json] | None = None,
    **defaults: Any,
) -> Json:
    """A time series panel; label columns become one series each, named by the label value."""
    if query.labels:
        defaults.setdefault("displayName", "${__field.labels." + query.labels[0] + "}")
    return timeseries_panel(
        title, [target(query, database)], DATASOURCE, grid, unit, bars, description, overrides, **defaults
    )


def timeseries_panel(
    title: str,
    targets: list[Json],
    datasource: Json,
    grid: tuple[int, int, int, int],
    unit: str = "short",
    bars: bool = False,
    description: str = "",
    overrides: list[Json] | None = None,
    **defaults: Any,
) -> Json:
    """A time series panel over prepared targets of any data source."""
    if bars:
        custom: Json = {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal", "group": "A"}}
    else:
        custom = {
            "drawStyle": "line",
            "lineWidth": 2,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
        }
    return _panel(
        "timeseries",
        title,
        targets,
        datasource,
        grid,
        description,
        _field_config(unit, custom, overrides, **defaults),
        {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
         "tooltip": {"mode": "multi", "sort": "desc"}},
    )  # fmt: skip


def table(
    title: str,
    query: PanelQuery,
    database: str,
    grid: tuple[int, int, int, int],
    description: str = "",
    overrides: list[Json] | None = None,
) -> Json:
    """A table panel."""
    return table_panel(title, [target(query, database)], DATASOURCE, grid, description, overrides)


def table_panel(
    title: str,
    targets: list[Json],
    datasource: Json,
    grid: tuple[int, int, int, int],
    description: str = "",
    overrides: list[Json] | None = None,
) -> Json:
    """A table panel over prepared targets of any data source."""
    return _panel(
        "table", title, targets, datasource, grid, description,
        _field_config("short", {"align": "auto"}, overrides),
        {"showHeader": True, "cellHeight": "sm"},
    )  # fmt: skip


def stat(
    title: str,
    query: PanelQuery,
    database: str,
    grid: tuple[int, int, int, int],
    field: str,
    unit: str = "short",
    description: str = "",
    **defaults: Any,
) -> Json:
    """A single-value panel showing one column of a one-row table query."""
    return stat_panel(title, [target(query, database)], DATASOURCE, grid, f"/^{field}$/", unit, description,
                      **defaults)  # fmt: skip


def stat_panel(
    title: str,
    targets: list[Json],
    datasource: Json,
    grid: tuple[int, int, int, int],
    fields: str = "",
    unit: str = "short",
    description: str = "",
    **defaults: Any,
) -> Json:
    """A single-value panel over prepared targets (`fields`: a regex of the field shown, "" numeric)."""
    return _panel(
        "stat", title, targets, datasource, grid, description,
        _field_config(unit, None, None, **defaults),
        {"reduceOptions": {"calcs": ["lastNotNull"], "fields": fields, "values": False},
         "colorMode": "value", "graphMode": "none", "textMode": "value", "justifyMode": "auto"},
    )  # fmt: skip


def _panel(
    kind: str,
    title: str,
    targets: list[Json],
    datasource: Json,
    grid: tuple[int, int, int, int],
    description: str,
    field_config: Json,
    options: Json,
) -> Json:
    x, y, w, h = grid
    panel: Json = {
        "type": kind,
        "title": title,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": field_config,
        "options": options,
        "targets": targets,
    }
    if description:
        panel["description"] = description
    return panel


def row(title: str, y: int) -> Json:
    """An expanded row header."""
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
            "panels": []}  # fmt: skip


def link_override(column: str, title: str) -> Json:
    """Make a table column link to the row's `url` field."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "links", "value": [{"title": title, "url": "${__data.fields.url}", "targetBlank": True}]}
        ],
    }


def color_override(series: str, color: str) -> Json:
    """Fix one series' colour."""
    return {
        "matcher": {"id": "byName", "options": series},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
    }


def query_variable(
    name: str,
    label: str,
    query: PanelQuery,
    database: str,
    multi: bool = False,
    current: str | None = None,
) -> Json:
    """A query variable backed by ClickHouse (refreshed when the time range changes)."""
    variable: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": query.render(database),
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        variable["current"] = {"text": ["All"], "value": ["$__all"]}
    elif current is not None:
        variable["current"] = {"text": current, "value": current}
    return variable


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    annotations: list[Json],
    time_from: str = "now-6h",
) -> Json:
    """The dashboard document; panel ids are assigned in order."""
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["finpulse"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": time_from, "to": "now"},
        "timezone": "utc",
        "annotations": {"list": annotations},
        "templating": {"list": variables},
        "panels": panels,
    }


def annotation(name: str, query: PanelQuery, database: str, color: str) -> Json:
    """A dashboard annotation source from a ClickHouse query (columns time, timeEnd, text, tags)."""
    return {
        "name": name,
        "enable": True,
        "iconColor": color,
        "datasource": DATASOURCE,
        "target": target(query, database, "Anno"),
    }
