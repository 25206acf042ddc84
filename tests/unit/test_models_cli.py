"""`finpulse classify` and `finpulse model` commands against the tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from models.classify_cli import classify
from models.cli import app

runner = CliRunner()


def _classify_app() -> typer.Typer:
    root = typer.Typer()
    root.command()(classify)
    root.add_typer(app, name="model")
    return root


def test_classify_jsonl_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "a", "text": "Shares soar after record profit"})
        + "\n"
        + "not json\n"
        + json.dumps({"id": "b", "text": "Bank fined over fraud", "extra": 1})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        _classify_app(),
        [
            "classify",
            str(src),
            "-o",
            str(out),
            "--model-dir",
            str(tiny_model_dir),
            "--backend",
            "onnx",
            "--batch-size",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and rows[1]["extra"] == 1
    keys = {
        "topic",
        "topic_prob",
        "sentiment",
        "p_negative",
        "p_neutral",
        "p_positive",
        "score",
        "confidence",
        "model_version",
    }
    assert keys <= set(rows[0])
    top = max(rows[0][f"p_{s}"] for s in ("negative", "neutral", "positive"))
    assert abs(rows[0]["confidence"] - top) < 1e-6


def test_classify_stdin_to_stdout(tiny_model_dir: Path) -> None:
    result = runner.invoke(
        _classify_app(),
        ["classify", "--model-dir", str(tiny_model_dir), "--backend", "torch"],
        input=json.dumps({"id": "x", "text": "Fed holds rates"}) + "\n",
    )
    assert result.exit_code == 0, result.output
    row = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][0])
    assert row["id"] == "x" and row["sentiment"] in {"negative", "neutral", "positive"}


def test_bench_command_writes_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        [
            "bench",
            "--model-dir",
            str(tiny_model_dir),
            "--backends",
            "onnx-fp32,torch-cpu",
            "--batch-sizes",
            "1,4",
            "--lengths",
            "16",
            "--seconds",
            "0.05",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    cells = json.loads(out.read_text())["results"]
    assert {(c["backend"], c["batch_size"]) for c in cells} == {
        ("onnx-fp32", 1),
        ("onnx-fp32", 4),
        ("torch-cpu", 1),
        ("torch-cpu", 4),
    }
    assert all(c["docs_per_s"] > 0 for c in cells)


def test_build_engine_explains_missing_tensorrt(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["build-engine", "--model-dir", str(tiny_model_dir)])
    assert result.exit_code == 2
    assert "tensorrt" in result.output


def test_classify_skips_hostile_lines_with_their_numbers_and_keeps_the_rest(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in.jsonl"
    deep = "[" * 2_000 + "]" * 2_000
    src.write_bytes(
        b'{"id": "a", "text": "Shares soar"}\n'
        + b'{"id": "s", "text": "\\ud800"}\n'  # a lone surrogate, as JSON escapes it
        + b'{"id": "u", "text": "caf\xe9"}\n'  # Latin-1, not UTF-8
        + f'{{"id": "d", "text": "x", "n": {deep}}}\n'.encode()
        + b'{"id": "t", "text": 5}\n'
        + b'{"id": "b", "text": "Bank fined"}\n'
    )
    out = tmp_path / "out.jsonl"
    args = ["classify", str(src), "-o", str(out), "--model-dir", str(tiny_model_dir), "--backend", "onnx"]
    result = runner.invoke(_classify_app(), args)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "b"]
    for number in (2, 3, 4, 5):
        assert f"line {number}: skipped" in result.stderr


def test_prior_estimates_a_stream_mix_from_unlabelled_text(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "traffic.jsonl"
    texts = ["Shares soar after record profit", "Bank fined over fraud", "Board meeting on Tuesday"]
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts * 5) + "not json\n")
    result = runner.invoke(app, ["prior", str(src), "--model-dir", str(tiny_model_dir), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("FINPULSE_MODEL_SENTIMENT_PRIOR=negative=")
    from models.calibration import parse_prior

    prior = parse_prior(line.partition("=")[2], ("negative", "neutral", "positive"))
    assert abs(prior.sum() - 1) < 1e-3


def test_prior_without_texts_is_a_usage_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_text("{}\n")
    result = runner.invoke(app, ["prior", str(src), "--model-dir", str(tiny_model_dir)])
    assert result.exit_code == 2 and "no JSON line" in result.output


def test_eval_with_an_estimated_stream_prior_reports_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [("Shares soar after record profit", "positive"), ("Bank fined over fraud", "negative")]
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows * 4))
    args = ["eval", "--model-dir", str(tiny_model_dir), "--data", str(data), "--backend", "onnx"]
    result = runner.invoke(app, [*args, "--prior", "auto", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["prior"] == "auto" and "estimated_prior" in report["model"]["sentiment"]


def test_eval_and_train_on_an_unusable_file_are_usage_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "labels.jsonl"
    data.write_text('not json\n{"text": "Shares soar", "label": "postive"}\n')
    evaluated = runner.invoke(app, ["eval", "--model-dir", str(tiny_model_dir), "--data", str(data)])
    assert evaluated.exit_code == 2 and "unknown sentiment label 'postive'" in _unboxed(evaluated.output)
    data.write_text("")
    trained = runner.invoke(
        app, ["train", "--data", str(data), "--base", str(tiny_model_dir), "--model-dir", str(tmp_path / "m")]
    )
    assert trained.exit_code == 2 and "no labelled rows" in _unboxed(trained.output)


def _unboxed(output: str) -> str:
    """A usage error's text without the box and line wrapping the terminal renderer adds."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())
