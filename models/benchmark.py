"""Throughput and latency per backend x batch size x sequence length, on the same inputs for all."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from models.base import Classifier
from models.settings import ModelSettings

BATCH_SIZES = (1, 8, 32, 128)
LENGTHS = (64, 128)


def make_inputs(sentences: Sequence[str], n: int, min_words: int) -> list[str]:
    """n texts of at least ``min_words`` words made by chaining sentences (cut by the tokenizer's limit)."""
    out, i = [], 0
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < min_words:
            parts.append(sentences[i % len(sentences)])
            i += 1
        out.append(" ".join(parts))
    return out


def time_cell(clf: Classifier, texts: Sequence[str], batch: int, min_seconds: float) -> dict[str, float]:
    """Warm up once, then call predict_batch repeatedly for at least ``min_seconds`` (and 3 calls)."""
    clf.predict_batch(texts[:batch])
    latencies: list[float] = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < min_seconds or len(latencies) < 3:
        chunk = [texts[(k * batch + j) % len(texts)] for j in range(batch)]
        t0 = time.perf_counter()
        clf.predict_batch(chunk)
        latencies.append(time.perf_counter() - t0)
        k += 1
    total = sum(latencies)
    cpu = time.process_time() - cpu_start
    latencies.sort()
    p50 = statistics.median(latencies)
    # median-based throughput resists noisy neighbours on shared CPUs; the mean one is kept beside it
    return {
        "docs_per_s": round(batch / p50, 1),
        "docs_per_s_mean": round(batch * len(latencies) / total, 1),
        # CPU seconds of this process (all its threads): a throughput that busy neighbours distort less
        "docs_per_cpu_s": round(batch * len(latencies) / cpu, 1) if cpu > 0 else None,
        "latency_ms_p50": round(1000 * p50, 2),
        "latency_ms_p95": round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
        "calls": len(latencies),
    }


def run_bench(
    settings: ModelSettings,
    backends: Sequence[tuple[str, dict[str, Any]]],
    sentences: Sequence[str],
    load: Callable[[ModelSettings], Classifier],
    batch_sizes: Sequence[int] = BATCH_SIZES,
    lengths: Sequence[int] = LENGTHS,
    min_seconds: float = 2.0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Bench each (name, settings overrides) backend; inputs fill each length bucket to its limit."""
    results = []
    version = None
    load_before = os.getloadavg()
    for name, overrides in backends:
        for length in lengths:
            texts = make_inputs(sentences, max(batch_sizes) * 2, min_words=length)
            clf = load(settings.model_copy(update={**overrides, "max_length": length}))
            version = clf.model_version
            for batch in batch_sizes:
                cell = time_cell(clf, texts, batch, min_seconds)
                results.append(
                    {"backend": clf.backend, "name": name, "max_length": length, "batch_size": batch, **cell}
                )
                progress(
                    f"{clf.backend:>16} len<={length:<3} batch {batch:>3}: {cell['docs_per_s']:>8} docs/s"
                )
            clf.close()
    return {
        "model_version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "threads": settings.intra_op_threads,
        "best_batch_size": settings.best_batch_size,
        "results": results,
    }
