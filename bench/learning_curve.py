"""What a desk's own labels buy: continue training a model on n of its rows, score on a fixed rest.

The labelled file is shuffled once (seed), its first ``max(sizes)`` stories form the training pool
and every other row is the held-out set, the same for every size, so the points of the curve are
comparable. Each point continues from ``model_dir`` (the shipped model) on the first n rows of
the pool: a tenth of them validate (early stopping, temperature), the rest train, for a step
budget that gives small sets more epochs. The shipped model's own score on the held-out set is
the n = 0 point. ``heldout_rows`` caps the scored rows (a random sample of the rest) where
scoring every row would cost more CPU time than the estimate needs.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.datasets import STORY_COLUMN, Record, read_file, split_records
from models.evaluation import evaluate_classifier, summary
from models.settings import ModelSettings

# Optimiser steps a point aims for (batch 32): 250 rows get 4 epochs, 4,000 rows one.
STEP_BUDGET = 2000
MAX_EPOCHS = 4


def pool_and_heldout(
    records: Sequence[Record], pool_size: int, seed: int
) -> tuple[list[Record], list[Record]]:
    """Shuffle stories once; the first ``pool_size`` rows (whole stories) are the pool, the rest held out."""
    stories: dict[str, list[Record]] = {}
    for n, record in enumerate(records):
        stories.setdefault(str(record.get(STORY_COLUMN) or f"row-{n}"), []).append(record)
    groups = list(stories.values())
    random.Random(seed).shuffle(groups)
    pool: list[Record] = []
    heldout: list[Record] = []
    for group in groups:
        (pool if len(pool) < pool_size else heldout).extend(group)
    if not heldout:
        raise ValueError(f"{len(records)} rows leave nothing to score beside a pool of {pool_size}")
    return pool, heldout


def epochs_for(rows: int) -> int:
    """Epochs that bring ``rows`` near the step budget (1 to MAX_EPOCHS)."""
    return max(1, min(MAX_EPOCHS, math.ceil(STEP_BUDGET / max(rows, 1))))


def _score(model_dir: Path, heldout: Sequence[Record]) -> dict[str, Any]:
    """Sentiment figures on the held-out rows (torch: the trained points have no ONNX export)."""
    from models.runtime import load_classifier

    clf = load_classifier(ModelSettings(dir=model_dir, backend="torch"))
    try:
        metrics = evaluate_classifier(clf, heldout)["sentiment"]
    finally:
        clf.close()
    negative = metrics["per_class"].get("negative", {})
    return {
        **summary({"sentiment": metrics}),
        "negative_precision": round(negative.get("precision", 0.0), 4),
        "negative_recall": round(negative.get("recall", 0.0), 4),
        "confusion": metrics["confusion"],
    }


def learning_curve(
    data: Path,
    model_dir: Path,
    sizes: Sequence[int],
    seed: int = 13,
    heldout_rows: int | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score the model as shipped and after continuing on each size; one dict per point."""
    from models.training import TrainConfig, train

    records = read_file(data)
    pool, heldout = pool_and_heldout(records, max(sizes), seed)
    heldout = heldout[:heldout_rows] if heldout_rows else heldout  # already shuffled: a random sample
    result: dict[str, Any] = {
        "data": str(data),
        "base_model": str(model_dir),
        "rows": len(records),
        "heldout_rows": len(heldout),
        "seed": seed,
        "points": [],
    }

    def add(point: dict[str, Any]) -> None:
        result["points"].append(point)
        if report:
            report(point)

    add({"train_rows": 0, "seconds": 0.0, **_score(model_dir, heldout)})
    for size in sorted(sizes):
        splits = split_records(pool[:size], validation=0.1, test=0.0, seed=seed)
        cfg = TrainConfig(epochs=epochs_for(len(splits["train"])), lr=3e-5, patience=1, seed=seed)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="finpulse-curve-") as tmp:
            train(
                splits["train"],
                splits["validation"],
                Path(tmp),
                cfg,
                base=str(model_dir),
                data_sources=[f"{data} ({size} rows)"],
                progress=False,
            )
            seconds = round(time.monotonic() - started, 1)
            scores = _score(Path(tmp), heldout)
        add({"train_rows": size, "epochs": cfg.epochs, "seconds": seconds, **scores})
    return result


def write_report(result: dict[str, Any], path: Path) -> None:
    """The curve as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
