"""End-to-end benchmark: ingest -> Kafka (Tansu) -> stream workers -> model -> ClickHouse 18.16 server.

Lifecycle: `E2EConfig(...)` -> `run_e2e(config, progress)` (a JSON-ready dict) ->
`bench.chart.write_chart(result, path)`. The harness (broker, server, workers) is `bench.harness`.

Every measurement ("point") uses a fresh topic, a fresh database and fresh worker processes
(`python -m finpulse stream`, the production entry point), so points never share state. Figures:

- throughput: measured documents / (last one stored - first one published), polled every 20 ms;
- latency: `classifications.pipeline_latency_ms` (stored_at - ingested_at, stamped at publish time);
- stages: the per-batch decode / inference / insert times the workers record in `pipeline_batches`,
  tokenisation timed separately on the same inputs, commit = last stored -> offsets committed;
- memory: each worker's peak RSS (VmHWM) just before it is stopped;
- ceiling: `models.benchmark.time_cell` (the `finpulse model bench` path) on the same texts at
  the same batch size, in this process while no worker runs.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.harness import E2EConfig, Harness, Progress, bench_documents, measure_ceiling


def run_e2e(config: E2EConfig, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Ceiling, batch-1 floor, e2e with 1 and 2 workers, batch-size sweep, offered-load sweep."""
    batch = config.batch_size
    docs = bench_documents(config.docs, config.seed)
    texts = [d.content for d in docs]
    progress(f"ceiling: raw backend at batch {batch} on the same {len(texts)} texts")
    # Same intra-op threads as one worker gets (see Harness.run_point).
    threads = config.model.intra_op_threads or os.cpu_count() or 1
    ceiling_model = config.model.model_copy(update={"intra_op_threads": threads})

    def ceiling_now() -> dict[str, Any]:
        cell = measure_ceiling(ceiling_model, texts, batch, config.ceiling_seconds)
        progress(f"ceiling: {cell['docs_per_s']} docs/s on {cell['backend']}")
        return cell

    # The machine is shared: the ceiling is measured before and after each main point, and each main
    # point is compared with the mean of the two ceilings around it.
    ceilings = [ceiling_now()]
    points: list[dict[str, Any]] = []

    def bracketed(point: dict[str, Any]) -> dict[str, Any]:
        ceilings.append(ceiling_now())
        point["ceiling_docs_per_s_around"] = round(
            (ceilings[-2]["docs_per_s"] + ceilings[-1]["docs_per_s"]) / 2, 1
        )
        points.append(point)
        return point

    with Harness(config, progress) as harness:
        floor = bracketed(harness.run_point("batch-1 floor", docs[: config.floor_docs], 1, 1))
        by_workers = {
            workers: bracketed(harness.run_point(f"e2e {workers} worker(s)", docs, workers, batch))
            for workers in config.workers
        }
        best_workers = max(by_workers, key=lambda w: by_workers[w]["docs_per_s"])
        best = by_workers[best_workers]
        for size in config.batch_sweep:
            if size not in (1, batch):
                points.append(harness.run_point(f"batch {size}", docs, best_workers, size))
        peak = best["docs_per_s"]
        for fraction in config.loads:
            rate = fraction * peak
            n = max(50, int(rate * config.load_seconds))
            points.append(harness.run_point(f"load {fraction:.0%}", docs[:n], best_workers, batch, rate))
    ceiling = {
        **ceilings[0],
        **{
            k: round(statistics.fmean(c[k] for c in ceilings), 3)
            for k in _AVERAGED
            if ceilings[0][k] is not None
        },
        "docs_per_s_each": [c["docs_per_s"] for c in ceilings],
    }
    same = by_workers.get(1, best)
    half = _closest_load(points, 0.5, peak)
    infer_ms = ceiling["latency_ms_p50"]
    latency_bound = 1000 * config.stream.max_wait_s + 2 * infer_ms
    result = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "backend": ceiling["backend"],
        "model_version": ceiling["model_version"],
        "batch_size": batch,
        "stream_settings": config.stream.model_dump(mode="json"),
        "docs": config.docs,
        "e2e_docs_per_s": peak,
        "e2e_workers": best_workers,
        "e2e_docs_per_s_by_workers": {str(w): p["docs_per_s"] for w, p in by_workers.items()},
        "ceiling_docs_per_s": best["ceiling_docs_per_s_around"],
        "batch1_docs_per_s": floor["docs_per_s"],
        "ratios": {
            "e2e_over_ceiling": round(peak / best["ceiling_docs_per_s_around"], 3),
            "e2e_over_batch1": round(peak / floor["docs_per_s"], 2),
            # e2e / batch-1 with each side first divided by the ceiling measured around it.
            "e2e_over_batch1_load_adjusted": round(
                (peak / best["ceiling_docs_per_s_around"])
                / (floor["docs_per_s"] / floor["ceiling_docs_per_s_around"]),
                2,
            ),
            # The same ratios from CPU time per document (far less sensitive to other users' load), for
            # the worker count whose model threads match the ceiling's (one worker, all cores).
            "cpu_ceiling_over_e2e": round(ceiling["cpu_ms_per_doc"] / same["cpu_ms_per_doc"], 3),
            "cpu_batch1_over_e2e": round(floor["cpu_ms_per_doc"] / same["cpu_ms_per_doc"], 2),
        },
        "latency_ms": best["latency_ms"],
        "latency_ms_half_load": half["latency_ms"] if half else None,
        "latency_bound_ms": round(latency_bound, 1),
        "stages_ms_per_batch": {
            **best["stage_ms_per_batch"],
            "tokenise": ceiling["tokenise_ms_per_batch"],
            "commit_lag": best["commit_lag_ms"],
        },
        "peak_rss_mb": {"workers": best["peak_rss_mb"], "bench_process": _own_peak_rss_mb()},
        "ceiling": ceiling,  # means over every ceiling measurement of the run
        "targets": {
            "e2e_over_ceiling>=0.9": peak >= 0.9 * best["ceiling_docs_per_s_around"],
            "e2e_over_batch1>=10": peak >= 10 * floor["docs_per_s"],
            "p99_half_load<=wait+2*infer": bool(half and half["latency_ms"]["p99"] <= latency_bound),
            "cpu_ceiling_over_e2e>=0.9": ceiling["cpu_ms_per_doc"] >= 0.9 * same["cpu_ms_per_doc"],
            "cpu_batch1_over_e2e>=10": floor["cpu_ms_per_doc"] >= 10 * same["cpu_ms_per_doc"],
        },
        "points": points,
    }
    return result


_AVERAGED = ("docs_per_s", "latency_ms_p50", "latency_ms_p95", "tokenise_ms_per_batch", "cpu_ms_per_doc")


def _closest_load(points: Sequence[dict[str, Any]], fraction: float, peak: float) -> dict[str, Any] | None:
    paced = [p for p in points if p["offered_docs_per_s"]]
    if not paced:
        return None
    return min(paced, key=lambda p: abs(p["offered_docs_per_s"] - fraction * peak))


def _own_peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m_5m_at_end": [round(load1, 2), round(load5, 2)],
    }


# --------------------------------------------------------------------------------------------- chart


def run_ab(
    config: E2EConfig,
    variants: dict[str, dict[str, Any]],
    repeat: int = 3,
    load: float = 0.5,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Stream-setting variants interleaved `repeat` times (order alternating), at a saturating burst
    and at `load` x the first variant's burst throughput; medians per variant and ratios to the first.

    Interleaving makes the comparison fair on a machine whose other load changes minute by minute.
    """
    docs = bench_documents(config.docs, config.seed)
    batch, workers = config.batch_size, config.workers[0]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"burst": [], "paced": []} for name in variants}
    names = list(variants)
    with Harness(config, progress) as harness:
        for round_ in range(repeat):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                runs[name]["burst"].append(
                    harness.run_point(f"{name} burst", docs, workers, batch, None, variants[name])
                )
            rate = load * statistics.median(p["docs_per_s"] for p in runs[names[0]]["burst"])
            paced = docs[: max(50, int(rate * config.load_seconds))]
            for name in order:
                runs[name]["paced"].append(
                    harness.run_point(f"{name} {load:.0%}", paced, workers, batch, rate, variants[name])
                )

    def summary(points: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "docs_per_s": statistics.median(p["docs_per_s"] for p in points),
            "cpu_ms_per_doc": statistics.median(p["cpu_ms_per_doc"] for p in points),
            **{
                f"latency_{k}_ms": statistics.median(p["latency_ms"][k] for p in points)
                for k in ("p50", "p99")
            },
            "mean_batch": statistics.median(p["mean_batch"] for p in points),
        }

    medians = {
        name: {kind: summary(points) for kind, points in kinds.items()} for name, kinds in runs.items()
    }
    base = medians[names[0]]
    ratios = {
        name: {
            kind: {
                key: round(value / base[kind][key], 3) if base[kind][key] else None
                for key, value in m.items()
            }
            for kind, m in kinds.items()
        }
        for name, kinds in medians.items()
    }
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "docs": config.docs,
        "workers": workers,
        "batch_size": batch,
        "load": load,
        "repeat": repeat,
        "variants": variants,
        "medians": medians,
        "ratios_to_first": ratios,
        "points": runs,
    }
