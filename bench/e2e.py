"""End-to-end benchmark: ingest -> Kafka (Tansu) -> stream workers -> model -> ClickHouse 18.16 server.

Lifecycle: `E2EConfig(...)` -> `run_e2e(config, progress)` (a JSON-ready dict) -> `write_chart(result, path)`.

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

import contextlib
import os
import platform
import random
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from devstack.services import (
    LocalClickHouseServer,
    TansuBroker,
    settings_env,
    start_stream_worker,
    terminate,
)
from ingest.schema import RUN_ID_HEADER, Document
from ingest.settings import KafkaSettings
from models.settings import ModelSettings
from storage.client import ClickHouseClient
from storage.settings import ClickHouseSettings
from stream_app.settings import StreamSettings

POLL_S = 0.02
Progress = Callable[[str], None]


@dataclass
class E2EConfig:
    """What to measure; `stream` and `model` are passed to the workers as FINPULSE_* variables."""

    docs: int = 10_000
    stream: StreamSettings = field(default_factory=StreamSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    workers: Sequence[int] = (1, 2)
    batch_sweep: Sequence[int] = (8, 32, 128)
    loads: Sequence[float] = (0.25, 0.5, 1.0)
    load_seconds: float = 8.0
    floor_docs: int = 300
    ceiling_seconds: float = 3.0
    partitions: int = 4
    # Tansu holds every fetch for the consumer's whole fetch wait (Kafka answers when data arrives):
    # workers get this cap unless a variant sets `fetch_max_wait_ms` itself (None = faust's 1.5 s).
    tansu_fetch_wait_ms: int | None = 50
    seed: int = 7
    log_dir: Path | None = None

    @property
    def batch_size(self) -> int:
        return self.stream.max_batch


# ---------------------------------------------------------------------------------------------- inputs


def _feed_records() -> list[dict[str, Any]]:
    path = resources.files("ingest") / "samples" / "demo_feed.jsonl"
    return [orjson.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bench_documents(n: int, seed: int = 7, prefix: str = "b") -> list[Document]:
    """`n` distinct documents in the demo feed's news/social mix; one news item in five carries a body
    of 2-5 further sentences (article-like length), the rest are headlines and short posts."""
    from ingest.records import to_document

    rng = random.Random(seed)
    records = _feed_records()
    sentences = [r["title"] or r["text"] for r in records]
    docs = []
    for i in range(n):
        record = dict(records[i % len(records)])
        record["id"] = f"{prefix}{i}-{record['id']}"
        if record.get("kind") == "news" and rng.random() < 0.2:
            record["text"] = " ".join(rng.sample(sentences, rng.randint(2, 5)))
        docs.append(to_document(record, default_source="bench"))
    return docs


# -------------------------------------------------------------------------------------------- helpers


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max (nearest rank) of `values`, rounded to 0.1 ms."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]

    return {
        k: round(float(rank(q)), 1) for k, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process (its threads included; 0 when gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, in MiB (0 when it has gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _wait(
    progress: Callable[[], float], timeout_s: float, what: str, workers: Sequence[subprocess.Popen]
) -> float:
    """Poll `progress` (0..1) until it reaches 1; return that moment. Polls slowly until 90 %, so that
    the polling queries cost ClickHouse little, then every POLL_S for a precise end time."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = progress()
        if done >= 1:
            return time.monotonic()
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(
                    f"a stream worker exited with code {worker.returncode} while waiting for {what}"
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S if done >= 0.9 else 10 * POLL_S)


# ------------------------------------------------------------------------------------------- ceiling


def measure_ceiling(model: ModelSettings, texts: Sequence[str], batch: int, seconds: float) -> dict[str, Any]:
    """Raw backend throughput at `batch` on `texts` (models.benchmark.time_cell) and tokenisation time."""
    from models.benchmark import time_cell
    from models.runtime import load_classifier

    clf = load_classifier(model)
    try:
        cpu_before = time.process_time()
        cell = time_cell(clf, texts, batch, seconds)
        cpu_s = time.process_time() - cpu_before
        timed_docs = batch * (cell["calls"] + 1)  # time_cell warms up with one extra call
        tokenise_ms = None
        tokenize = getattr(clf, "tokenize", None)
        if tokenize is not None:
            chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
            started = time.perf_counter()
            for chunk in chunks:
                tokenize(chunk)
            tokenise_ms = 1000 * (time.perf_counter() - started) / len(chunks)
        return {
            "backend": clf.backend,
            "model_version": clf.model_version,
            "batch_size": batch,
            **cell,
            "tokenise_ms_per_batch": round(tokenise_ms, 3) if tokenise_ms is not None else None,
            "cpu_ms_per_doc": round(1000 * cpu_s / timed_docs, 3),
        }
    finally:
        clf.close()


# ------------------------------------------------------------------------------------------ pipeline


class Harness:
    """One Tansu broker and one ClickHouse 18.16 server for the whole benchmark."""

    def __init__(self, config: E2EConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.log_dir = config.log_dir or Path(tempfile.mkdtemp(prefix="finpulse-bench-"))
        self.broker = TansuBroker(log_path=self.log_dir / "tansu.log")
        self.clickhouse = LocalClickHouseServer(self.log_dir / "clickhouse")

    def __enter__(self) -> Harness:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.clickhouse.start()
        self.broker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker.stop()
        self.clickhouse.remove()

    def run_point(
        self,
        label: str,
        docs: Sequence[Document],
        workers: int,
        batch_size: int,
        rate: float | None = None,
        stream_overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Publish `docs` (burst, or paced at `rate` docs/s) to `workers` fresh workers; measure."""
        from ingest.publisher import DocumentPublisher, ensure_topics
        from storage.client import connect
        from storage.migrate import migrate

        suffix = uuid.uuid4().hex[:8]
        kafka = self.broker.kafka_settings(
            raw_topic=f"bench-raw-{suffix}",
            dlq_topic=f"bench-dlq-{suffix}",
            partitions=self.config.partitions,
        )
        clickhouse = ClickHouseSettings(
            mode="server", port=self.clickhouse.tcp_port, database=f"bench_{suffix}"
        )
        client = connect(clickhouse)
        migrate(client)
        ensure_topics(kafka)
        stream = self.config.stream.model_copy(
            update={
                "app_id": f"finpulse-bench-{suffix}",
                "max_batch": batch_size,
                "fetch_max_wait_ms": self.config.tansu_fetch_wait_ms,
                **(stream_overrides or {}),
            }
        )
        # Split the cores between workers instead of oversubscribing them.
        threads = self.config.model.intra_op_threads or max(1, (os.cpu_count() or 1) // workers)
        model = self.config.model.model_copy(update={"intra_op_threads": threads})
        procs = [
            self._start_worker(f"w{i}-{suffix}", kafka, clickhouse, stream, model) for i in range(workers)
        ]
        publisher = DocumentPublisher(kafka)
        try:
            warmup = bench_documents(max(64, 4 * batch_size * workers), seed=1, prefix=f"warm{suffix}")
            publisher.publish(_stamped(warmup), headers=[(RUN_ID_HEADER, b"warmup")])
            publisher.flush()

            def warmed() -> float:
                stored = _count(client, "warmup")
                seen = client.query(
                    f"SELECT uniqExact(worker) FROM {client.database}.pipeline_batches "
                    "WHERE run_id = 'warmup'"
                )[0][0]
                return float(stored >= len(warmup) and seen >= workers)

            _wait(warmed, 180, f"{label}: warm-up on {workers} worker(s)", procs)
            groups = {"workers": [p.pid for p in procs], **self._service_pids()}
            cpu_before = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
            started = time.monotonic()
            self._publish(publisher, docs, rate)
            done = _wait(
                lambda: _count(client, "live") / len(docs),
                120 + 2 * len(docs),
                f"{label}: documents stored",
                procs,
            )
            seconds = done - started
            cpu_s = {
                name: sum(cpu_seconds(pid) for pid in pids) - cpu_before[name]
                for name, pids in groups.items()
            }
            produced = len(warmup) + len(docs)
            committed_at = _wait_committed(kafka, stream.app_id, produced, 30)
            rss = [peak_rss_mb(p.pid) for p in procs]
            stats = _stage_stats(client)
            latencies = [row[0] for row in client.query(
                f"SELECT pipeline_latency_ms FROM {client.database}.classifications WHERE run_id = 'live'"
            )]  # fmt: skip
        finally:
            publisher.close()
            for proc in procs:
                terminate(proc, grace_s=20)
            with contextlib.suppress(Exception):
                client.command(f"DROP DATABASE IF EXISTS {client.database}")
            client.close()
        point = {
            "label": label,
            "workers": workers,
            "batch_size": batch_size,
            "max_wait_s": stream.max_wait_s,
            "offered_docs_per_s": round(rate, 1) if rate else None,
            "docs": len(docs),
            "seconds": round(seconds, 3),
            "docs_per_s": round(len(docs) / seconds, 1),
            "latency_ms": percentiles(latencies),
            "commit_lag_ms": round(1000 * (committed_at - done), 1) if committed_at else None,
            "peak_rss_mb": rss,
            # CPU of workers + ClickHouse + broker per document: robust to other load on the machine.
            "cpu_ms_per_doc": round(1000 * sum(cpu_s.values()) / len(docs), 3),
            "cpu_ms_per_doc_by_process": {k: round(1000 * v / len(docs), 3) for k, v in cpu_s.items()},
            **stats,
        }
        self.progress(
            f"{label:<22} workers={workers} batch={batch_size:<3} "
            f"offered={point['offered_docs_per_s'] or 'burst'!s:>7}  {point['docs_per_s']:>7.1f} docs/s  "
            f"p50={point['latency_ms']['p50']:.0f} p99={point['latency_ms']['p99']:.0f} ms  "
            f"mean batch={stats['mean_batch']:.1f}"
        )
        return point

    def _service_pids(self) -> dict[str, list[int]]:
        services = {"clickhouse": self.clickhouse, "broker": self.broker}
        return {name: [svc.pid] for name, svc in services.items() if svc.pid is not None}

    def _start_worker(
        self,
        name: str,
        kafka: KafkaSettings,
        clickhouse: ClickHouseSettings,
        stream: StreamSettings,
        model: ModelSettings,
    ) -> subprocess.Popen:
        env = {
            **settings_env("FINPULSE_KAFKA_", kafka),
            **settings_env("FINPULSE_CLICKHOUSE_", clickhouse),
            **settings_env("FINPULSE_MODEL_", model),
            **settings_env("FINPULSE_STREAM_", stream.model_copy(update={"worker_name": name})),
        }
        return start_stream_worker(env, self.log_dir / f"{name}.log")

    @staticmethod
    def _publish(publisher: Any, docs: Sequence[Document], rate: float | None) -> None:
        if rate is None:
            for start in range(0, len(docs), 200):
                publisher.publish(_stamped(docs[start : start + 200]))
            publisher.flush()
            return
        started = time.monotonic()
        sent = 0
        while sent < len(docs):
            due = min(len(docs), int((time.monotonic() - started) * rate) + 1)
            if due > sent:
                publisher.publish(_stamped(docs[sent:due]))
                sent = due
            time.sleep(0.005)
        publisher.flush()


def _stamped(docs: Sequence[Document]) -> Iterator[Document]:
    now = datetime.now(UTC)
    return (doc.model_copy(update={"ingested_at": now}) for doc in docs)


def _count(client: ClickHouseClient, run_id: str) -> int:
    return int(
        client.query(
            f"SELECT count() FROM {client.database}.classifications WHERE run_id = %(r)s", {"r": run_id}
        )[0][0]
    )


def _stage_stats(client: ClickHouseClient) -> dict[str, Any]:
    ((batches, docs, decode, infer, insert),) = client.query(
        f"SELECT count(), sum(batch_size), sum(decode_ms), sum(inference_ms), sum(insert_ms) "
        f"FROM {client.database}.pipeline_batches WHERE run_id = 'live'"
    )
    batches, docs = int(batches), int(docs or 0)
    totals = {"decode": decode, "infer": infer, "insert": insert}
    per_batch = {k: round(float(v or 0) / max(batches, 1), 3) for k, v in totals.items()}
    return {
        "batches": batches,
        "mean_batch": round(docs / max(batches, 1), 2),
        "stage_ms_per_batch": per_batch,
    }


def _wait_committed(kafka: KafkaSettings, group: str, produced: int, timeout_s: float) -> float | None:
    """When the group's committed offsets cover every produced message (None on timeout)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="finpulse-bench")
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            offsets = admin.list_group_offsets(group).get(group, {})
            if sum(o.offset for tp, o in offsets.items() if tp.topic == kafka.raw_topic) >= produced:
                return time.monotonic()
            time.sleep(POLL_S)
        return None
    finally:
        admin.close()


# ------------------------------------------------------------------------------------------- the run


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


def write_chart(result: dict[str, Any], path: Path) -> Path:
    """Throughput and latency vs batch size (saturating load) and vs offered load, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result["points"]
    workers = result["e2e_workers"]
    sweep = sorted(
        (p for p in points if not p["offered_docs_per_s"] and p["workers"] in (1, workers)
         and (p["workers"] == workers or p["batch_size"] == 1)),
        key=lambda p: p["batch_size"],
    )  # fmt: skip
    loads = sorted((p for p in points if p["offered_docs_per_s"]), key=lambda p: p["offered_docs_per_s"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes = [p["batch_size"] for p in sweep]
    left.plot(sizes, [p["docs_per_s"] for p in sweep], "o-", color="tab:blue", label="e2e docs/s")
    left.axhline(
        result["ceiling_docs_per_s"], color="tab:blue", ls=":", label=f"ceiling @ {result['batch_size']}"
    )
    left.set_xscale("log", base=2)
    left.set_xlabel(f"max batch size (saturating burst; {workers} worker(s), batch 1: one worker)")
    left.set_ylabel("documents / s", color="tab:blue")
    twin = left.twinx()
    twin.plot(sizes, [p["latency_ms"]["p99"] for p in sweep], "s--", color="tab:red", label="p99 latency")
    twin.set_ylabel("p99 publish->stored ms (queueing incl.)", color="tab:red")
    left.set_title("throughput vs batch size")
    left.legend(loc="lower right", fontsize=8)
    offered = [p["offered_docs_per_s"] for p in loads]
    right.plot(offered, [p["docs_per_s"] for p in loads], "o-", color="tab:blue", label="achieved docs/s")
    right.plot(offered, offered, ":", color="grey", label="offered")
    right.set_xlabel(f"offered load, docs/s (peak {result['e2e_docs_per_s']:.0f})")
    right.set_ylabel("documents / s", color="tab:blue")
    twin = right.twinx()
    for key, style, colour in (("p50", "s--", "tab:green"), ("p99", "^--", "tab:orange")):
        twin.plot(offered, [p["latency_ms"][key] for p in loads], style, color=colour, label=f"{key} latency")
    twin.axhline(result["latency_bound_ms"], color="tab:red", ls=":", label="target p99 bound")
    twin.set_ylabel("publish->stored ms")
    twin.legend(loc="upper left", fontsize=8)
    right.legend(loc="lower right", fontsize=8)
    right.set_title(f"throughput and latency vs offered load (batch {result['batch_size']})")
    ratios = result["ratios"]
    fig.suptitle(
        f"finpulse e2e on {result['backend']}: {result['e2e_docs_per_s']:.0f} docs/s, "
        f"{ratios['e2e_over_ceiling']:.0%} of ceiling, {ratios['e2e_over_batch1']:.1f}x batch-1",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ A/B runs


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
