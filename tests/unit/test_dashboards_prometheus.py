"""The Prometheus dashboard and alert rules: layout, data source, rule structure, runbook anchors."""

from __future__ import annotations

import re
from pathlib import Path

from dashboards.prometheus import PROMETHEUS, RuleTimings, alert_rules, pipeline_dashboard, rules_file

ROOT = Path(__file__).resolve().parents[2]


def test_layout_and_every_target_reads_prometheus() -> None:
    model = pipeline_dashboard()
    cells: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["datasource"] == PROMETHEUS and panel["targets"]
        assert all(t["datasource"] == PROMETHEUS and t["expr"] for t in panel["targets"])
    assert [p["id"] for p in model["panels"]] == list(range(1, len(model["panels"]) + 1))


def test_rules_use_their_signals_and_have_a_runbook_section() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", guide, re.MULTILINE)}
    for rule in alert_rules():
        assert rule.signals and all(signal in rule.expr for signal in rule.signals), rule.name
        assert rule.name.lower() in headings, f"docs/operations.md has no section for {rule.name}"
    names = [rule["alert"] for rule in rules_file()["groups"][0]["rules"]]
    assert len(names) == len(set(names)) >= 5


def test_timings_change_windows_not_structure() -> None:
    short = RuleTimings(window="30s", restart_window="1m", stall_s=5, hold="0s")
    for production, test in zip(alert_rules(), alert_rules(short), strict=True):
        assert production.name == test.name
        strip = re.compile(r"\[[^\]]*\]|\b\d+\b")
        assert strip.sub("", production.expr) == strip.sub("", test.expr)
