"""The benchmark's harness: one Tansu broker, one ClickHouse 18.16 server, fresh workers per point.

`E2EConfig` says what to measure; `Harness.run_point` runs one measurement ("point") on a fresh
topic, a fresh database and fresh `python -m finpulse stream` processes, so points never share state.
"""

from __future__ import annotations

import contextlib
import os
import random
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
from ingest.topics import KafkaSettings
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
