"""`finpulse model ...`: corpus, train, eval, prior, export, build-engine, bench.

Heavy imports (torch, onnxruntime, transformers) happen inside the command functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from models.settings import ModelSettings

app = typer.Typer(help="Train, evaluate, export, compile and benchmark the topic + sentiment classifier.")

ModelDirOpt = Annotated[
    Path | None, typer.Option("--model-dir", help="Model directory (default: settings dir).")
]


def cli_settings(model_dir: Path | None = None, **overrides: Any) -> ModelSettings:
    """Settings from the environment, with CLI overrides that were actually given."""
    settings = ModelSettings()
    update = {k: v for k, v in {"dir": model_dir, **overrides}.items() if v is not None}
    return settings.model_copy(update=update)


def echo_err(message: str) -> None:
    """Print a progress or diagnostic line on stderr."""
    typer.echo(message, err=True)


def _read_labelled(path: Path, option: str, **table_options: Any) -> list[dict]:
    """A local labelled file's records; an unreadable file is a usage error of ``option``."""
    from models.datasets import read_file

    try:
        return read_file(path, **table_options)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


@app.command()
def corpus(
    import_from: Annotated[
        Path | None,
        typer.Option(help="First copy the writers' parts, pass-B labels and adjudications from this folder."),
    ] = None,
    freeze: Annotated[
        bool, typer.Option(help="Freeze the test split built now: later builds keep its stories in test.")
    ] = False,
) -> None:
    """Build corpus v4: merge labelling passes, kappa, adjudications, story split, stats, datasheet."""
    from models.corpus.build import build_corpus, freeze_test, import_items

    if import_from:
        echo_err(f"imported {import_items(import_from)}")
    stats = build_corpus()
    if freeze:
        echo_err(f"froze the test split in {freeze_test()}")
    kappa = stats["agreement_pass_a_vs_b"]
    summary = {
        "items": stats["total"],
        "splits": {name: part["items"] for name, part in stats["splits"].items()},
        "resolution": stats["resolution"],
        "kappa_sentiment": kappa["sentiment"]["kappa"],
        "kappa_topic": kappa["topic"]["kappa"],
    }
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def train(
    out: ModelDirOpt = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            help="Local labelled file(s): PhraseBank .txt, .csv/.tsv/.jsonl. Default: the shipped corpus."
        ),
    ] = None,
    with_corpus: Annotated[
        bool, typer.Option(help="Also train on the shipped corpus when --data is given.")
    ] = False,
    aux: Annotated[
        list[Path] | None,
        typer.Option(
            help="Auxiliary labelled file(s) added to the training split only (never validated on)."
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Base encoder: mpnet (default, accurate), minilm (8x faster on CPU) or a local "
            "BERT-family transformers folder."
        ),
    ] = None,
    text_column: str = "text",
    label_column: str = "label",
    topic_column: str = "topic",
    label_map: Annotated[
        str | None, typer.Option(help="Raw label mapping, e.g. 0=negative,1=neutral,2=positive")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Maximum epochs (default: the base's recipe, mpnet 1, minilm 4).")
    ] = None,
    batch_size: int = 32,
    max_length: int = 64,
    lr: Annotated[
        float | None, typer.Option(help="Encoder learning rate (default: mpnet 5e-5, minilm 8e-5).")
    ] = None,
    patience: int = 1,
    refit: Annotated[
        bool,
        typer.Option(help="Train on train + validation for exactly --epochs (no early stopping)."),
    ] = False,
    seed: int = 13,
    threads: Annotated[int | None, typer.Option(help="torch intra-op threads.")] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="Distil from this model directory: its logits on the training rows become soft targets."
        ),
    ] = None,
    unlabelled: Annotated[
        list[Path] | None,
        typer.Option(
            help="JSONL files with a text field: extra distillation rows labelled by --teacher only."
        ),
    ] = None,
    distill_weight: Annotated[float, typer.Option(help="Weight of the teacher's soft targets (0-1).")] = 0.5,
    without_cues: Annotated[
        bool,
        typer.Option(help="Ablation: drop emoji and class-specific words from train and validation text."),
    ] = False,
) -> None:
    """Fine-tune encoder + sentiment and topic heads on CPU (early stopping on validation).

    --base may also be a finpulse model directory (e.g. var/model) to continue from the shipped model.
    """
    from models import datasets as ds
    from models.bases import BASES, DEFAULT_BASE, resolve_base
    from models.training import TrainConfig, add_teacher_logits
    from models.training import train as run_training

    try:
        resolve_base(base)  # fail before reading data; assembles a packaged encoder on first use
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--base") from exc
    settings = cli_settings(out)
    sources: list[str] = []
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    if data:
        records = []
        for path in data:
            rows = _read_labelled(
                path,
                "--data",
                text_column=text_column,
                label_column=label_column,
                topic_column=topic_column or None,
                label_map=ds.parse_label_map(label_map),
            )
            records += rows
            sources.append(f"{path} ({len(rows)} rows)")
        for name, part in ds.split_records(records, seed=seed).items():
            splits[name] += part
    if not data or with_corpus:
        for name in splits:
            splits[name] += ds.load_corpus(name)
        sources.append("finpulse corpus (models/corpus)")
    for path in aux or []:
        rows = _read_labelled(
            path, "--aux", text_column=text_column, label_column=label_column, topic_column=topic_column
        )
        splits["train"] += rows
        sources.append(f"{path} ({len(rows)} rows, auxiliary, training only)")
    if without_cues:
        cues = ds.shortcut_cues(splits["train"])
        for name in ("train", "validation"):
            splits[name] = ds.without_cues(splits[name], cues)
        sources.append(f"shortcut ablation: emoji and {len(cues)} class-specific words removed")
    if teacher:
        extra = [{"text": t} for path in unlabelled or [] for t in ds.read_texts(path)]
        try:
            splits["train"] = add_teacher_logits(teacher, splits["train"] + extra)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--teacher") from exc
        sources.append(f"distilled from {teacher} ({len(extra)} unlabelled rows, weight {distill_weight})")
    recipe = BASES.get(base or DEFAULT_BASE)
    cfg = TrainConfig(
        max_length=max_length,
        epochs=epochs or (recipe.epochs if recipe else TrainConfig.epochs),
        batch_size=batch_size,
        lr=lr or (recipe.lr if recipe else TrainConfig.lr),
        patience=patience,
        seed=seed,
        threads=threads,
        distill_weight=distill_weight if teacher else 0.0,
    )
    if refit:
        splits["train"] += splits.pop("validation")
        splits["validation"] = []
        sources.append("refit: validation split merged into training")
    echo_err(f"training on {len(splits['train'])} rows, validating on {len(splits['validation'])}")
    md = run_training(
        splits["train"], splits["validation"], settings.dir, cfg, base=base, data_sources=sources
    )
    if data:
        # user data has no shipped test split: keep the held-out rows with the model for `eval`
        ds.write_jsonl(md.path / "heldout_test.jsonl", splits["test"])
    echo_err(f"wrote {md.path} (model_version {md.model_version})")


def _heldout(model_dir: Path, split: str, data: Path | None) -> tuple[list[dict], str]:
    from models.datasets import load_corpus

    if data:
        return _read_labelled(data, "--data"), str(data)
    own = model_dir / "heldout_test.jsonl"
    if split == "test" and own.exists():
        with open(own, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()], str(own)
    return load_corpus(split), f"corpus:{split}"


@app.command("eval")
def evaluate(
    model_dir: ModelDirOpt = None,
    split: Annotated[str, typer.Option(help="Corpus split to score (train | validation | test).")] = "test",
    data: Annotated[Path | None, typer.Option(help="Score a local labelled file instead.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto | torch | onnx | tensorrt")] = None,
    baseline: Annotated[bool, typer.Option(help="Also train + score the TF-IDF + LR baseline.")] = True,
    prior: Annotated[
        str | None,
        typer.Option(
            help="Sentiment class prior of the scored stream: a spec such as "
            "negative=0.15,neutral=0.65,positive=0.20, or 'auto' to estimate it from the texts "
            "without their labels (EM, see `finpulse model prior`)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder for eval.json / eval.md (default model dir).")
    ] = None,
) -> None:
    """Accuracy, macro-F1, per-class P/R and confusion matrices of both heads on a held-out split."""
    from models.datasets import load_corpus
    from models.evaluation import evaluate_classifier, summary, tfidf_baseline, to_markdown
    from models.modeldir import ModelDir
    from models.runtime import load_classifier

    settings = cli_settings(model_dir, backend=backend, sentiment_prior=None if prior == "auto" else prior)
    md = ModelDir(settings.dir)
    records, source = _heldout(md.path, split, data)
    clf = load_classifier(settings)
    report: dict[str, Any] = {"model_version": md.model_version, "split": source, "backend": clf.backend}
    if prior:
        report["prior"] = prior
    model_prior = _model_prior(md) if prior == "auto" else None
    report["model"] = evaluate_classifier(clf, records, model_prior=model_prior)
    clf.close()
    if baseline and source.startswith("corpus:"):
        # the baseline sees the same training data as the model (train, + validation after --refit)
        refit = any("refit" in src for src in md.meta.get("training", {}).get("data_sources", []))
        train_rows = load_corpus("train") + (load_corpus("validation") if refit else [])
        report["baseline"] = tfidf_baseline(train_rows, records)
    folder = out or md.path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "eval.md").write_text(to_markdown(report))
    metrics = {**md.meta.get("metrics", {}), source: summary(report["model"])}
    if "baseline" in report:
        metrics[f"baseline {source}"] = summary(report["baseline"])
    md.update_meta(metrics=metrics)
    typer.echo(json.dumps({k: summary(report[k]) for k in ("model", "baseline") if k in report}, indent=2))
    echo_err(f"wrote {folder / 'eval.json'} and {folder / 'eval.md'}")


def _model_prior(md: Any) -> list[float]:
    from models.calibration import calibration_section

    found = calibration_section(md.meta).get("sentiment", {}).get("model_prior")
    if not found:
        raise typer.BadParameter("this model has no calibration section; retrain it", param_hint="--prior")
    return found


@app.command("prior")
def stream_prior(
    data: Annotated[Path, typer.Argument(help="JSONL of unlabelled traffic with a 'text' field.")],
    model_dir: ModelDirOpt = None,
    backend: Annotated[str | None, typer.Option(help="auto | torch | onnx | tensorrt")] = None,
) -> None:
    """Estimate the sentiment mix of a stream from a sample of its texts (no labels needed) and
    print it as the FINPULSE_MODEL_SENTIMENT_PRIOR value that adapts the model to that stream."""
    from models.calibration import format_prior
    from models.datasets import read_texts
    from models.evaluation import adapt_to_stream, predict_all
    from models.modeldir import ModelDir
    from models.runtime import load_classifier

    texts = read_texts(data)
    if not texts:
        raise typer.BadParameter(f"{data} holds no JSON line with a non-empty 'text'", param_hint="DATA")
    settings = cli_settings(model_dir, backend=backend, sentiment_prior=None)
    clf = load_classifier(settings)
    preds = predict_all(clf, texts)
    clf.close()
    own = _model_prior(ModelDir(settings.dir))
    prior, _ = adapt_to_stream(preds, own)
    echo_err(f"{len(texts)} texts; the model's training-like prior: {format_prior(own, clf.sentiments)}")
    typer.echo(f"FINPULSE_MODEL_SENTIMENT_PRIOR={format_prior(prior, clf.sentiments)}")


@app.command()
def export(
    model_dir: ModelDirOpt = None,
    tolerance: Annotated[float, typer.Option(help="Max abs logit difference allowed vs torch.")] = 1e-4,
    int8: Annotated[
        bool, typer.Option(help="Also quantise dynamically to int8 and measure its loss.")
    ] = True,
    split: Annotated[str, typer.Option(help="Split on which the int8 accuracy delta is measured.")] = "test",
) -> None:
    """Export model.onnx (dynamic batch/sequence, opset 17) with a parity gate; optionally model.int8.onnx."""
    from models.export import ParityError, export_onnx, quantize_int8
    from models.modeldir import ModelDir

    settings = cli_settings(model_dir)
    md = ModelDir(settings.dir)
    try:
        record = export_onnx(md, tolerance=tolerance)
    except ParityError as exc:
        echo_err(f"export failed: {exc}")
        raise typer.Exit(1) from exc
    echo_err(f"model.onnx: parity max abs diff {record['parity_max_abs_diff']:.2e} (tolerance {tolerance:g})")
    if int8:
        records, source = _heldout(md.path, split, None)
        q = quantize_int8(md, records, split_name=source, max_length=settings.max_length)
        offered = "offered" if q["accuracy_loss_points"] < 1.0 else "NOT offered (loss >= 1 point)"
        echo_err(
            f"model.int8.onnx: accuracy loss {q['accuracy_loss_points']:.2f} points on {source}; {offered}"
        )


@app.command("build-engine")
def build_engine_cmd(
    model_dir: ModelDirOpt = None,
    max_batch: Annotated[int | None, typer.Option(help="Profile max batch size.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Profile max sequence length.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached engine exists.")] = False,
) -> None:
    """Build (and cache) the TensorRT FP16 engine from model.onnx. Needs a GPU and the tensorrt package."""
    from models.modeldir import ModelDir
    from models.runtime import cuda_available, tensorrt_importable

    if not tensorrt_importable() or not cuda_available():
        echo_err("build-engine needs the `tensorrt` Python package and a CUDA GPU; neither check passed here")
        raise typer.Exit(2)
    from models.tensorrt_backend import build_engine

    settings = cli_settings(model_dir, trt_max_batch=max_batch, trt_max_length=max_length)
    path = build_engine(ModelDir(settings.dir), settings, force=force)
    typer.echo(str(path))


def available_backends() -> list[tuple[str, dict[str, Any]]]:
    """Backends that can run here: ONNX fp32/int8 and torch on CPU; torch CUDA fp16 and TensorRT on GPU."""
    from models.runtime import cuda_available, tensorrt_importable

    out: list[tuple[str, dict[str, Any]]] = [
        ("onnx-fp32", {"backend": "onnx", "onnx_variant": "fp32"}),
        ("onnx-int8", {"backend": "onnx", "onnx_variant": "int8"}),
        ("torch-cpu", {"backend": "torch", "device": "cpu"}),
    ]
    if cuda_available():
        out.append(("torch-cuda-fp16", {"backend": "torch", "device": "cuda"}))
        if tensorrt_importable():
            out.append(("tensorrt", {"backend": "tensorrt"}))
    return out


@app.command()
def bench(
    model_dir: ModelDirOpt = None,
    backends: Annotated[
        str | None, typer.Option(help="Comma list, e.g. onnx-fp32,onnx-int8,torch-cpu.")
    ] = None,
    batch_sizes: str = "1,8,32,128",
    lengths: Annotated[
        str, typer.Option(help="Sequence-length buckets (inputs fill each bucket).")
    ] = "64,128",
    seconds: Annotated[float, typer.Option(help="Minimum timed seconds per cell.")] = 2.0,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for CPU backends.")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON output path.")] = None,
) -> None:
    """Documents/s and latency per backend x batch size x sequence length (same inputs for all)."""
    from models.benchmark import run_bench
    from models.runtime import load_classifier
    from models.samples import PARITY_SENTENCES

    settings = cli_settings(model_dir, intra_op_threads=threads)
    chosen = available_backends()
    if backends:
        wanted = backends.split(",")
        chosen = [b for b in chosen if b[0] in wanted]
    try:
        from models.datasets import load_corpus

        sentences = [r["text"] for r in load_corpus("test")]
    except (ImportError, FileNotFoundError):
        sentences = list(PARITY_SENTENCES)
    result = run_bench(
        settings,
        chosen,
        sentences,
        load_classifier,
        batch_sizes=[int(x) for x in batch_sizes.split(",")],
        lengths=[int(x) for x in lengths.split(",")],
        min_seconds=seconds,
        progress=echo_err,
    )
    text = json.dumps(result, indent=2)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        echo_err(f"wrote {out}")
    else:
        typer.echo(text)
