"""Backtest scoring, events files, parameter grids and the report's output contract."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from alerts.backtest import (
    BacktestError,
    LabelledEvent,
    apply_params,
    backtest,
    episodes,
    grid_points,
    load_events,
    parse_grid,
    score,
)
from alerts.backtest_report import write_report
from alerts.detector import AlertEvent, BucketStats, alert_id
from alerts.rules import load_rules, parse_rules

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _event(key: str, state: str, start_min: int, end_min: int, decided_min: int) -> AlertEvent:
    kind, _, name = key.partition(":")
    start = T0 + timedelta(minutes=start_min)
    return AlertEvent(
        alert_id=alert_id("r", kind, name, start), rule="r", key_kind=kind, key=name, state=state,
        severity="warning", window_start=start, window_end=T0 + timedelta(minutes=end_min),
        decided_at=T0 + timedelta(minutes=decided_min), volume=10, negative=8, negative_share=0.8,
        baseline=0.2, z_score=4.0,
    )  # fmt: skip


def _labelled(key: str, start_min: int, end_min: int) -> LabelledEvent:
    kind, _, name = key.partition(":")
    return LabelledEvent(kind, name, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min))


def test_score_precision_recall_delay_and_lead_time() -> None:
    alerts = [
        _event("topic:earnings", "firing", 10, 13, 13),  # inside the earnings event: right
        _event("topic:earnings", "resolved", 10, 25, 28),
        _event("ticker:ACME", "firing", 12, 14, 14),  # other key during the event: coincident
        _event("topic:macro", "firing", 50, 52, 52),  # nothing labelled then: wrong
        _event("topic:macro", "firing", 70, 71, 72),  # its resolved event (window to 80) makes it right
        _event("topic:macro", "resolved", 70, 80, 83),
    ]
    labelled = [
        _labelled("topic:earnings", 10, 30),
        _labelled("topic:macro", 75, 90),
        _labelled("ticker:XYZ", 0, 5),
    ]
    scores = score(alerts, labelled)
    overall = scores.overall.to_json()
    assert (overall["alerts"], overall["true_alerts"], overall["coincident_alerts"]) == (4, 2, 1)
    assert overall["precision"] == 0.5 and overall["recall"] == round(2 / 3, 4)
    # earnings: decided 3 min after start, 17 min before the end; macro: decided 3 min before it began
    assert scores.per_key["topic:earnings"].delays_s == [180.0] and scores.per_key[
        "topic:earnings"
    ].leads_s == [1020.0]
    assert scores.per_key["topic:macro"].delays_s == [-180.0]
    assert overall["delay_s_mean"] == 0.0 and overall["lead_time_s_mean"] == round((1020 + 1080) / 2, 1)
    assert scores.per_key["ticker:XYZ"].to_json()["recall"] == 0.0
    assert scores.per_key["ticker:ACME"].to_json()["recall"] is None
    labelled_keys = scores.labelled_keys.to_json()
    assert (labelled_keys["alerts"], labelled_keys["precision"]) == (3, round(2 / 3, 4))


def test_episodes_pair_firing_with_resolved() -> None:
    eps = episodes([_event("topic:a", "firing", 0, 3, 3), _event("topic:a", "resolved", 0, 9, 12)])
    assert len(eps) == 1 and eps[0].resolved and eps[0].window_end == T0 + timedelta(minutes=9)


def test_load_events_reads_the_shipped_file_and_names_bad_lines(tmp_path: Path) -> None:
    shipped = load_events(Path(__file__).resolve().parents[2] / "ingest" / "samples" / "demo_events.csv")
    assert [e.label for e in shipped] == ["topic:regulation_legal", "ticker:TSLA"]
    assert shipped[0].start == datetime(2026, 11, 2, 14, 20, tzinfo=UTC)
    bad = tmp_path / "events.csv"
    bad.write_text(
        "key,start,end\ntopic:a,2026-11-02T10:00:00Z,2026-11-02T11:00:00Z\nsector:x,2026-11-02,2026-11-03\n"
    )
    with pytest.raises(BacktestError, match=r"events.csv:3: key 'sector:x'"):
        load_events(bad)
    bad.write_text("key,start,end\ntopic:a,2026-11-02T10:00:00Z,2026-11-02T09:00:00Z\n")
    with pytest.raises(BacktestError, match="end must be after start"):
        load_events(bad)
    bad.write_text("key,when\n")
    with pytest.raises(BacktestError, match="key,start,end"):
        load_events(bad)


def test_grid_parsing_aliases_and_rule_prefixes() -> None:
    grid = parse_grid(["z=2,3,4 min_volume=10,20", "topic-negative-spike.min_lift=0.3"])
    assert grid == {"z_enter": [2, 3, 4], "min_volume": [10, 20], "topic-negative-spike.min_lift": [0.3]}
    assert len(grid_points(grid)) == 6 and grid_points({}) == [{}]
    with pytest.raises(BacktestError, match="expected name=v1,v2"):
        parse_grid(["z"])


def test_apply_params_sets_fields_and_revalidates() -> None:
    rules = load_rules()
    changed = apply_params(rules, {"z_enter": 4.5, "topic-negative-spike.min_lift": 0.3, "bucket_s": 120})
    assert {r.z_enter for r in changed.rules} == {4.5} and changed.bucket_s == 120
    assert [r.min_lift for r in changed.rules if r.name == "topic-negative-spike"] == [0.3]
    assert [r.min_lift for r in changed.rules if r.name == "market-negative-spike"] == [0.15]
    with pytest.raises(BacktestError, match="z_exit"):
        apply_params(rules, {"z_enter": 1.0})
    with pytest.raises(BacktestError, match="no rule named"):
        apply_params(rules, {"nope.z_enter": 4})
    with pytest.raises(BacktestError, match="not a rule field"):
        apply_params(rules, {"zz": 4})
    sure = [apply_params(rules, point) for point in grid_points(parse_grid(["negatives=all,confident"]))]
    assert [{r.negatives for r in ruleset.rules} for ruleset in sure] == [{"all"}, {"confident"}]


RULES = parse_rules(
    {
        "bucket_s": 60,
        "forget_after_buckets": 120,
        "rules": [
            {
                "name": "topic-spike",
                "key_kind": "topic",
                "min_volume": 6,
                "min_negative": 4,
                "min_lift": 0.2,
                "z_enter": 3,
                "z_exit": 1.5,
                "exit_buckets": 2,
                "cooldown_buckets": 2,
                "warmup_buckets": 5,
                "halflife_buckets": 20,
            }  # fmt: skip
        ],
    }
)


def _series(spikes: list[tuple[int, int]], minutes: int = 120, seed: int = 3) -> list[BucketStats]:
    rng = random.Random(seed)
    out = []
    for m in range(minutes):
        volume = 8
        share = 0.9 if any(a <= m < b for a, b in spikes) else 0.1
        negative = sum(rng.random() < share for _ in range(volume))
        out.append(BucketStats("topic", "earnings", T0 + timedelta(minutes=m), volume, negative, volume, 0.0))
    return out


def test_backtest_and_report_follow_the_output_contract(tmp_path: Path) -> None:
    series = _series([(30, 36), (80, 86)])
    labelled = [_labelled("topic:earnings", 30, 36), _labelled("topic:earnings", 80, 86)]
    result = backtest(series, RULES, labelled, parse_grid(["z=3,8", "min_volume=6,2"]))
    doc = write_report(tmp_path, result, series, {"source": "test"})
    assert doc["metrics"]["overall"]["recall"] == 1.0 and doc["metrics"]["overall"]["precision"] == 1.0
    assert doc["counts"]["firing"] == 2 and doc["counts"]["by_key"] == {"topic:earnings": 2}
    assert [row["params"] for row in doc["grid"]][:2] == [
        {"z_enter": 3, "min_volume": 6},
        {"z_enter": 3, "min_volume": 2},
    ]
    assert "min_negative (4) cannot exceed min_volume (2)" in doc["grid"][1]["error"]
    assert doc["grid"][2]["overall"]["alerts"] < 2  # z 8: too strict for these spikes

    lines = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert len(lines) == len(result.events) == 4
    for line in lines:
        assert {"alert_id", "key", "state", "window_start", "window_end", "severity"} <= set(line)
        assert line["key"] == "topic:earnings" and line["state"] in ("firing", "resolved")
        assert datetime.fromisoformat(line["window_start"]).tzinfo is not None
    assert orjson.loads((tmp_path / "summary.json").read_bytes()) == orjson.loads(orjson.dumps(doc))
    html = (tmp_path / "report.html").read_text()
    # self-contained: both pictures inline, nothing loaded from elsewhere
    assert "data-figure='series' src='data:image/png;base64," in html
    assert "data-figure='grid' src='data:image/png;base64," in html
    assert "src='http" not in html and "<script" not in html
    assert doc["metrics"]["per_rule"]["topic-spike"]["recall"] == 1.0
    assert (tmp_path / "series.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_backtest_without_events_lists_alerts_only(tmp_path: Path) -> None:
    series = _series([(40, 46)])
    doc = write_report(tmp_path, backtest(series, RULES), series, {"source": "test"})
    assert "metrics" not in doc and "grid" not in doc and doc["counts"]["firing"] >= 1
    assert (tmp_path / "report.html").exists() and not (tmp_path / "grid.png").exists()
