"""The `finpulse classify` command: JSONL documents in, the same rows plus their classification out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from models.cli import ModelDirOpt, cli_settings, echo_err


def classify(
    input: Annotated[
        Path | None, typer.Argument(help="JSONL with id and text; '-' or omitted = stdin.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output JSONL (default stdout).")
    ] = None,
    model_dir: ModelDirOpt = None,
    backend: Annotated[str | None, typer.Option(help="auto | torch | onnx | tensorrt")] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per predict_batch call.")] = 64,
) -> None:
    """Classify JSONL documents: each output row is the input row plus topic, sentiment, probabilities,
    score and model_version. A line that is not UTF-8, not a JSON object with 'text', or cannot be
    written back as JSON is skipped with its line number; the run goes on."""
    from tqdm import tqdm

    from models.runtime import load_classifier

    clf = load_classifier(cli_settings(model_dir, backend=backend))
    src = sys.stdin.buffer if input is None or str(input) == "-" else open(input, "rb")  # noqa: SIM115
    dst = sys.stdout if output is None else open(output, "w", encoding="utf-8")  # noqa: SIM115
    bar = tqdm(unit="doc", file=sys.stderr, desc=f"classify ({clf.backend})")
    skipped = 0
    try:
        batch: list[tuple[int, dict]] = []
        for n, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                row = _input_row(line)
            except ValueError as exc:
                echo_err(f"line {n}: skipped ({exc})")
                skipped += 1
                continue
            batch.append((n, row))
            if len(batch) >= batch_size:
                skipped += _emit(clf, batch, dst, bar)
                batch = []
        if batch:
            skipped += _emit(clf, batch, dst, bar)
    finally:
        bar.close()
        clf.close()
        if src is not sys.stdin.buffer:
            src.close()
        if dst is not sys.stdout:
            dst.close()
    if skipped:
        echo_err(f"{skipped} lines skipped")


def _input_row(line: bytes) -> dict:
    """One JSONL line as a row with a string 'text'; ValueError says why not."""
    import orjson

    try:
        row = orjson.loads(line)  # strict UTF-8, no lone surrogates, bounded nesting
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise ValueError("expected a JSON object with a string 'text'")
    return row


def _emit(clf: Any, rows: list[tuple[int, dict]], dst: Any, bar: Any) -> int:
    """Classify and write `rows` (line number, row); returns how many could not be written."""
    preds = clf.predict_batch([row["text"] for _, row in rows])
    skipped = 0
    for (n, row), pred in zip(rows, preds, strict=True):
        try:
            line = json.dumps(
                {**row, **pred.as_dict(), "model_version": clf.model_version}, ensure_ascii=False
            )
        except (ValueError, TypeError, RecursionError) as exc:
            echo_err(f"line {n}: skipped (cannot be written back as JSON: {type(exc).__name__})")
            skipped += 1
            continue
        dst.write(line + "\n")
    dst.flush()
    bar.update(len(rows))
    return skipped
