"""`finpulse replay` and `finpulse backtest` refuse bad arguments with clear messages, before any I/O."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from alerts.backtest_cli import backtest_command
from finpulse.replay import replay_command

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"


def _invoke(command, args: list[str]):
    app = typer.Typer()
    app.command()(command)
    return CliRunner().invoke(app, args)


def test_replay_refuses_live_run_id_bad_ranges_and_misplaced_options() -> None:
    base = ["--from", "2026-11-02T13:00Z", "--to", "2026-11-02T14:00Z"]
    cases = {
        "run id 'live' is the live stream's": [*base, "--run-id", "live"],
        "empty range": ["--from", "2026-11-02T14:00Z", "--to", "2026-11-02T13:00Z", "--run-id", "r1"],
        "not an ISO-8601 time": ["--from", "today", "--to", "2026-11-02T13:00Z", "--run-id", "r1"],
        "use it with --source kafka": [*base, "--run-id", "r1", "--topics", "finpulse.docs.raw"],
        "--source must be one of": [*base, "--run-id", "r1", "--source", "s3"],
    }
    for message, args in cases.items():
        result = _invoke(replay_command, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    result = _invoke(replay_command, [*base, "--run-id", "r1", "--source", "kafka", "--embedded-broker"])
    assert result.exit_code == 2 and "--embedded-broker needs" in result.output


def test_backtest_needs_exactly_one_history_and_valid_files(tmp_path: Path) -> None:
    feed = str(SAMPLES / "demo_feed.jsonl")
    result = _invoke(backtest_command, [])
    assert result.exit_code == 2 and "exactly one of --run-id and --input" in result.output
    result = _invoke(backtest_command, ["--run-id", "live", "--input", feed])
    assert result.exit_code == 2
    result = _invoke(backtest_command, ["--run-id", "live", "--labels"])
    assert result.exit_code == 2 and "--labels goes with --input" in result.output
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    result = _invoke(backtest_command, ["--input", feed, "--labels", "--rules", str(rules)])
    assert result.exit_code == 2 and "invalid alert rules" in result.output
    result = _invoke(backtest_command, ["--input", feed, "--labels", "--grid", "z"])
    assert result.exit_code == 2 and "expected name=v1,v2" in result.output


def _one_clear_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


def test_backtest_answers_bad_times_and_files_with_one_line_and_code_2(tmp_path: Path) -> None:
    feed = str(SAMPLES / "demo_feed.jsonl")
    out = _one_clear_line(_invoke(backtest_command, ["--run-id", "live", "--from", "garbage"]))
    assert "not an ISO-8601 time: 'garbage'" in out
    events = tmp_path / "events.csv"
    events.write_text("key,start,end\ntopic:earnings,2026-11-02T13:00Z\n")
    out = _one_clear_line(_invoke(backtest_command, ["--input", feed, "--labels", "--events", str(events)]))
    assert "events.csv:2: a column is missing" in out
    events.write_bytes(b"key,start,end\ntopic:caf\xe9,2026-11-02T13:00Z,2026-11-02T14:00Z\n")
    out = _one_clear_line(_invoke(backtest_command, ["--input", feed, "--labels", "--events", str(events)]))
    assert "not UTF-8" in out
    latin = tmp_path / "input.csv"
    latin.write_bytes(b"id,title,published_at\n1,Caf\xe9 chain sinks,2026-11-02T13:00:00Z\n")
    out = _one_clear_line(_invoke(backtest_command, ["--input", str(latin), "--labels"]))
    assert "input.csv: not UTF-8" in out


def test_replay_with_the_broker_down_is_one_line_and_code_2(tmp_path: Path, monkeypatch) -> None:
    from devstack.services import free_port

    monkeypatch.setenv("FINPULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("FINPULSE_KAFKA_ADMIN_TIMEOUT_S", "1")
    monkeypatch.setenv("FINPULSE_CLICKHOUSE_MODE", "embedded")
    monkeypatch.setenv("FINPULSE_CLICKHOUSE_EMBEDDED_PATH", str(tmp_path / "chdb"))
    args = ["--from", "2026-11-02T13:00Z", "--to", "2026-11-02T14:00Z", "--run-id", "r1", "--no-worker"]
    out = _one_clear_line(_invoke(replay_command, args))
    assert "Kafka at 127.0.0.1:" in out and "unavailable" in out
