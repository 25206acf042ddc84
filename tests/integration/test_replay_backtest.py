"""Backtests on the shipped labelled sample: scores, the report contract, and live == backtest alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from alerts.backtest import (
    MetaLabels,
    backtest,
    classify_documents,
    input_series,
    load_events,
    parse_grid,
    read_input,
    run_series,
)
from alerts.backtest_cli import backtest_command
from alerts.backtest_report import write_report
from alerts.rules import load_rules
from alerts.settings import AlertSettings
from alerts.worker import AlertWorker
from ingest.schema import Document
from storage.client import ClickHouseClient
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"
FEED, EVENTS = SAMPLES / "demo_feed.jsonl", SAMPLES / "demo_events.csv"
CONTRACT = {"alert_id", "key", "state", "window_start", "window_end", "severity"}


@pytest.fixture(scope="module")
def sample() -> list[Document]:
    docs, problems = read_input(FEED)
    assert not problems and len(docs) == 601
    return docs


def test_backtest_on_shipped_sample_reports_precision_recall_lead_time(sample, tmp_path: Path) -> None:
    rules = load_rules()
    series = input_series(sample, MetaLabels(sample), rules, tmp_path / "work")
    result = backtest(series, rules, load_events(EVENTS), parse_grid(["z=3,5", "min_volume=8,20"]))
    doc = write_report(tmp_path / "report", result, series, {"source": "input", "input": str(FEED)})

    per_key = doc["metrics"]["per_key"]
    for key in ("topic:regulation_legal", "ticker:TSLA"):
        assert per_key[key]["recall"] == 1.0 and per_key[key]["precision"] == 1.0
        assert 0 < per_key[key]["delay_s_mean"] <= 600 and per_key[key]["lead_time_s_mean"] > 0
    overall = doc["metrics"]["overall"]
    assert overall["recall"] == 1.0 and overall["precision"] is not None and overall["lead_time_s_mean"] > 0
    assert doc["metrics"]["labelled_keys"]["precision"] == 1.0
    assert len(doc["grid"]) == 4 and all("overall" in row for row in doc["grid"])

    lines = [orjson.loads(line) for line in (tmp_path / "report" / "alerts.jsonl").read_bytes().splitlines()]
    assert lines and all(set(line) >= CONTRACT for line in lines)
    assert {line["state"] for line in lines} == {"firing", "resolved"}
    assert all(
        line["window_start"].endswith("Z") and datetime.fromisoformat(line["window_end"]) for line in lines
    )
    html = (tmp_path / "report" / "report.html").read_text()
    assert "data-figure='series'" in html and "data-figure='grid'" in html and "per rule" in html
    assert (tmp_path / "report" / "series.png").stat().st_size > 10_000


def test_backtest_command_with_a_model_writes_the_report(tiny_model_dir, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(backtest_command)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        ["--input", str(FEED), "--events", str(EVENTS), "--model", str(tiny_model_dir), "--report", str(out),
         "--grid", "z=3,4", "min_volume=10"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["documents"] == 601 and summary["counts"]["buckets"] > 0
    assert {"overall", "labelled_keys", "per_key"} <= set(summary["metrics"]) and len(summary["grid"]) == 2
    assert (out / "alerts.jsonl").exists() and (out / "report.html").exists()


def test_live_worker_polled_incrementally_equals_backtest(
    sample, ch_client: ClickHouseClient, clickhouse_settings: ClickHouseSettings
) -> None:
    rules = load_rules()
    classify_documents(BatchWriter(ch_client, clickhouse_settings), sample, MetaLabels(sample), "live")
    expected = backtest(run_series(ch_client, "live", rules), rules).events

    worker = AlertWorker(AlertSettings(grace_s=0, lookback_s=2 * 86_400, samples=0), ch_client)
    worker.setup()
    first = min(d.published_at for d in sample).replace(second=0)
    end = max(d.published_at for d in sample).replace(second=0) + timedelta(minutes=1)
    live, moment = [], first
    while moment < end:  # polls every 7.5 minutes of event time, mid-bucket
        moment = min(moment + timedelta(seconds=450), end)
        live += worker.run_once(moment)
    worker.close()

    assert live == expected
    firing = {(e.key_kind, e.key) for e in live if e.state == "firing"}
    assert {("topic", "regulation_legal"), ("ticker", "TSLA")} <= firing
    stored = ch_client.query(
        f"SELECT count() FROM {ch_client.database}.alerts WHERE run_id = 'live' AND window_start >= %(t)s",
        {"t": datetime(2026, 11, 2, tzinfo=UTC)},
    )
    assert stored == [(len(expected),)]
