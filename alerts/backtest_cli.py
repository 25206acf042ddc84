"""`finpulse backtest`: composition root of a backtest (history -> buckets -> detector -> report)."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer


def _fmt(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def backtest_command(
    run_id: str = typer.Option(None, "--run-id", help="Backtest a stored run (live or a replay's run id)."),
    input_path: Path = typer.Option(
        None,
        "--input",
        exists=True,
        dir_okay=False,
        help="Backtest a JSONL/CSV file of documents (id, published_at, title and/or text, source).",
    ),
    rules_path: Path = typer.Option(
        None,
        "--rules",
        exists=True,
        dir_okay=False,
        help="Rules YAML (default: the shipped alerts/rules.yaml).",
    ),
    events_path: Path = typer.Option(
        None,
        "--events",
        exists=True,
        dir_okay=False,
        help="Labelled events CSV key,start,end (key kind:name).",
    ),
    grid: list[str] = typer.Option(
        None,
        "--grid",
        help="Rule settings to compare, e.g. --grid z=2,3,4 min_volume=10,20 (any rule field).",
    ),
    more_grid: list[str] = typer.Argument(
        None, help="More grid items (name=v1,v2) after --grid.", hidden=True
    ),
    report: Path = typer.Option(
        None, "--report", help="Write alerts.jsonl, summary.json and report.html here."
    ),
    model: Path = typer.Option(
        None, "--model", help="Model directory for --input (default: FINPULSE_MODEL_DIR)."
    ),
    labels: bool = typer.Option(
        False,
        "--labels",
        help="With --input: use each document's meta.label_* instead of a model (rules only).",
    ),
    from_: str = typer.Option(None, "--from", help="With --run-id: first event time (ISO-8601)."),
    to: str = typer.Option(None, "--to", help="With --run-id: end of the range (exclusive)."),
) -> None:
    """Run the live detector over a run's or a file's history and score it against labelled events."""
    from alerts.backtest import BacktestError, backtest, load_events, parse_grid
    from alerts.backtest_report import write_report
    from alerts.rules import RulesError, load_rules
    from ingest.replay_source import ReplayError, parse_time
    from storage.client import StorageError

    if (run_id is None) == (input_path is None):
        raise typer.BadParameter("give exactly one of --run-id and --input")
    if labels and (input_path is None or model is not None):
        raise typer.BadParameter("--labels goes with --input and replaces --model")
    if (from_ or to) and run_id is None:
        raise typer.BadParameter("--from and --to go with --run-id")
    started = time.monotonic()
    try:
        start, end = (parse_time(value) if value else None for value in (from_, to))
        rules = load_rules(rules_path)
        labelled = load_events(events_path) if events_path else []
        grid_spec = parse_grid([*(grid or ()), *(more_grid or ())])
        if run_id is not None:
            series, info = _run_series(run_id, rules, start, end)
        else:
            series, info = _input_series(input_path, rules, model, labels)
        result = backtest(series, rules, labelled, grid_spec)
    except (BacktestError, RulesError, ReplayError, StorageError) as exc:
        typer.echo(f"backtest: {exc}", err=True)
        raise typer.Exit(2) from exc
    info["rules"] = str(rules_path or "alerts/rules.yaml (shipped)")
    if events_path:
        info["events"] = str(events_path)
    firing = sum(e.state == "firing" for e in result.events)
    typer.echo(f"{len(series)} buckets -> {len(result.events)} alert events ({firing} firing)")
    if result.scores is not None:
        for name, s in (("overall", result.scores.overall), ("labelled keys", result.scores.labelled_keys)):
            j = s.to_json()
            typer.echo(
                f"{name}: precision {_fmt(j['precision'])} ({j['true_alerts']}/{j['alerts']}; "
                f"{j['coincident_alerts']} more during another key's event), "
                f"recall {_fmt(j['recall'])} ({j['detected']}/{j['events']}), "
                f"delay {_fmt(j['delay_s_mean'], 's')}, lead time {_fmt(j['lead_time_s_mean'], 's')}"
            )
    for row in result.grid:
        params = " ".join(f"{k}={v}" for k, v in row.params.items())
        if row.scores is None:
            typer.echo(f"  grid {params}: {row.error or f'{row.alerts} alert events'}")
        else:
            o = row.scores.overall.to_json()
            typer.echo(
                f"  grid {params}: precision {_fmt(o['precision'])} recall {_fmt(o['recall'])} "
                f"lead {_fmt(o['lead_time_s_mean'], 's')} ({o['alerts']} alerts)"
            )
    if report is not None:
        info["seconds"] = round(time.monotonic() - started, 2)
        write_report(report, result, series, info)
        typer.echo(f"report: {report / 'report.html'}")


def _run_series(run_id: str, rules, start: datetime | None, end: datetime | None):
    from alerts.backtest import run_series
    from storage.client import connect
    from storage.settings import ClickHouseSettings

    clickhouse = ClickHouseSettings()
    client = connect(clickhouse)
    try:
        series = run_series(client, run_id, rules, start, end)
    finally:
        client.close()
    return series, {"source": "run", "run_id": run_id, "database": clickhouse.database}


def _input_series(path: Path, rules, model_dir: Path | None, labels: bool):
    from tqdm import tqdm

    from alerts.backtest import MetaLabels, input_series, read_input
    from models.runtime import load_classifier
    from models.settings import ModelSettings

    docs, problems = read_input(path)
    for problem in problems[:20]:
        typer.echo(f"skipped {problem}", err=True)
    if labels:
        classifier = MetaLabels(docs)
    else:
        settings = ModelSettings()
        if model_dir is not None:
            settings = settings.model_copy(update={"dir": model_dir})
        classifier = load_classifier(settings)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="finpulse-backtest-") as workdir,
            tqdm(total=len(docs), desc="classify", unit="doc") as bar,
        ):
            series = input_series(docs, classifier, rules, Path(workdir), bar.update)
    finally:
        classifier.close()
    info = {
        "source": "input", "input": str(path), "documents": len(docs), "invalid": len(problems),
        "model_version": classifier.model_version, "backend": classifier.backend,
    }  # fmt: skip
    return series, info


if __name__ == "__main__":
    typer.run(backtest_command)
