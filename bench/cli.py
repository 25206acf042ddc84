"""`finpulse bench ...`: the end-to-end benchmark (heavy imports inside the command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Benchmark the pipeline end to end against the model backend's ceiling.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Keep `e2e` a sub-command (`finpulse bench e2e`, `python -m bench e2e`)."""


def _stream_settings():
    """Stream settings from FINPULSE_STREAM_* (read once, here at the entry point)."""
    from stream_app.settings import StreamSettings

    return StreamSettings()


def _model(model_dir: Path | None, backend: str | None, onnx_variant: str | None):
    """Model settings from FINPULSE_MODEL_* with the CLI overrides that were given."""
    from models.settings import ModelSettings

    update = {"dir": model_dir, "backend": backend, "onnx_variant": onnx_variant}
    return ModelSettings().model_copy(update={k: v for k, v in update.items() if v})


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


@app.command()
def e2e(
    docs: Annotated[int, typer.Option(help="Documents per saturating run.")] = 10_000,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")] = Path(
        "bench/results/e2e.json"
    ),
    chart: Annotated[Path | None, typer.Option(help="PNG chart (default: the JSON path with .png).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Max batch (default FINPULSE_STREAM_MAX_BATCH).")
    ] = None,
    workers: Annotated[str, typer.Option(help="Worker counts to compare, e.g. 1,2.")] = "1,2",
    sweep: Annotated[str, typer.Option(help="Extra batch sizes for the chart ('' for none).")] = "8,32,128",
    loads: Annotated[
        str, typer.Option(help="Offered load as fractions of peak ('' for none).")
    ] = "0.25,0.5,1.0",
    load_seconds: Annotated[float, typer.Option(help="Duration of each paced run.")] = 8.0,
    floor_docs: Annotated[int, typer.Option(help="Documents in the batch-1 run.")] = 300,
    ceiling_seconds: Annotated[float, typer.Option(help="Timed seconds of the ceiling measurement.")] = 3.0,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default FINPULSE_MODEL_DIR).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="auto | torch | onnx | tensorrt")] = None,
    onnx_variant: Annotated[str | None, typer.Option(help="auto | fp32 | int8")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Broker, ClickHouse and worker logs.")] = None,
) -> None:
    """Run the pipeline on N documents with 1 and 2 workers against its batch-1 floor and the raw
    backend's ceiling; write the JSON report and the chart.

    Starts its own Tansu broker and ClickHouse server; workers are `finpulse stream` processes.
    """
    import orjson

    from bench.chart import write_chart
    from bench.e2e import E2EConfig, run_e2e

    stream = _stream_settings()
    if batch_size:
        stream = stream.model_copy(update={"max_batch": batch_size})
    config = E2EConfig(
        docs=docs,
        stream=stream,
        model=_model(model_dir, backend, onnx_variant),
        workers=_ints(workers),
        batch_sweep=_ints(sweep),
        loads=[float(x) for x in loads.split(",") if x.strip()],
        load_seconds=load_seconds,
        floor_docs=min(floor_docs, docs),
        ceiling_seconds=ceiling_seconds,
        log_dir=log_dir,
    )
    result = run_e2e(config, progress=lambda line: typer.echo(line, err=True))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    png = write_chart(result, chart or json_path.with_suffix(".png"))
    ratios = result["ratios"]
    typer.echo(
        f"e2e {result['e2e_docs_per_s']:.1f} docs/s ({result['e2e_workers']} worker(s)); "
        f"ceiling {result['ceiling_docs_per_s']:.1f}; batch-1 {result['batch1_docs_per_s']:.1f}; "
        f"e2e/ceiling {ratios['e2e_over_ceiling']:.2f}; e2e/batch-1 {ratios['e2e_over_batch1']:.1f}x; "
        f"p99 {result['latency_ms']['p99']:.0f} ms; targets {result['targets']}"
    )
    typer.echo(f"wrote {json_path} and {png}")


@app.command()
def ab(
    docs: Annotated[int, typer.Option(help="Documents per saturating run.")] = 1_500,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")] = Path(
        "bench/results/ab.json"
    ),
    repeat: Annotated[int, typer.Option(help="Rounds (variants interleaved, order alternating).")] = 3,
    load: Annotated[float, typer.Option(help="Paced run at this fraction of the baseline's peak.")] = 0.5,
    load_seconds: Annotated[float, typer.Option(help="Duration of each paced run.")] = 8.0,
    workers: Annotated[int, typer.Option(help="Stream workers.")] = 1,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default FINPULSE_MODEL_DIR).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="auto | torch | onnx | tensorrt")] = None,
    onnx_variant: Annotated[str | None, typer.Option(help="auto | fp32 | int8")] = None,
) -> None:
    """The old agent's behaviour (fixed batches, insert not overlapped; with faust's 1.5 s fetch wait
    and with the bench's Tansu cap) against adaptive batching with the insert overlapped, interleaved
    on the same broker and server; medians and ratios to the first variant as JSON."""
    import orjson

    from bench.e2e import E2EConfig, run_ab

    config = E2EConfig(
        docs=docs, stream=_stream_settings(), model=_model(model_dir, backend, onnx_variant),
        workers=[workers], load_seconds=load_seconds,
    )  # fmt: skip
    old_agent = {"adaptive_batching": False, "overlap_insert": False}
    variants = {
        "fixed-sequential-1.5s-fetch": {**old_agent, "fetch_max_wait_ms": None},
        "fixed-sequential": old_agent,
        "adaptive-overlapped": {"adaptive_batching": True, "overlap_insert": True},
    }
    result = run_ab(
        config, variants, repeat=repeat, load=load, progress=lambda line: typer.echo(line, err=True)
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    typer.echo(orjson.dumps(result["ratios_to_first"], option=orjson.OPT_INDENT_2).decode())
    typer.echo(f"wrote {json_path}")


@app.command("learning-curve")
def learning_curve(
    data: Annotated[Path, typer.Option(help="A desk's labelled file (.csv/.tsv/.jsonl with text, label).")],
    model_dir: Annotated[Path, typer.Option(help="The model to continue from.")] = Path("var/model"),
    sizes: Annotated[str, typer.Option(help="Training rows per point.")] = "250,1000,4000",
    seed: Annotated[int, typer.Option(help="Shuffle and training seed.")] = 13,
    heldout_rows: Annotated[
        int | None, typer.Option(help="Score a random sample of this many held-out rows (default all).")
    ] = None,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")] = Path(
        "bench/results/learning_curve.json"
    ),
) -> None:
    """Continue the model on n rows of a labelled file for each n and score every point on the same
    held-out rest: what a desk's own labels buy (accuracy, macro-F1, negative precision)."""
    from bench.learning_curve import learning_curve as run_curve
    from bench.learning_curve import write_report

    def show(point: dict) -> None:
        typer.echo(
            f"{point['train_rows']:>6} rows: accuracy {point['sentiment_accuracy']:.3f}, macro-F1 "
            f"{point['sentiment_macro_f1']:.3f}, negative precision {point['negative_precision']:.3f} "
            f"({point['seconds']:.0f} s)",
            err=True,
        )

    try:
        result = run_curve(data, model_dir, _ints(sizes), seed=seed, heldout_rows=heldout_rows, report=show)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    write_report(result, json_path)
    typer.echo(f"wrote {json_path}")
