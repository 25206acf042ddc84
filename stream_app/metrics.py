"""Prometheus metrics of the stream worker (names in docs/operations.md).

`StreamMetrics(registry)` is built by the composition root and passed to the batch pipeline; it
also answers the readiness question "has the worker made progress recently?".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from storage.writer import DeadLetter
from stream_app.processor import PreparedBatch

# Dead-letter reasons are free text (they quote the bad input); the metric label is their class.
_REASON_CLASSES = (
    ("empty", "empty message value"),
    ("not_json", "not JSON"),
    ("not_object", "expected a JSON object"),
    ("invalid_document", "invalid document"),
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
AGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def reason_class(reason: str) -> str:
    """The bounded label for a dead-letter reason."""
    for label, prefix in _REASON_CLASSES:
        if reason.startswith(prefix):
            return label
    return "other"


class StreamMetrics:
    """Counters, histograms and gauges of one stream worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "finpulse_stream_documents_received", "Messages read from the input topics.", registry=registry
        )
        self.stored = Counter(
            "finpulse_stream_documents_stored", "Documents classified and stored.", registry=registry
        )
        self.dead_letters = Counter(
            "finpulse_stream_dead_letters", "Messages sent to the dead-letter topic.", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.batches = Counter("finpulse_stream_batches", "Micro-batches stored.", registry=registry)
        self.batch_size = Histogram(
            "finpulse_stream_batch_size",
            "Messages per micro-batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "finpulse_stream_inference_seconds", "Decode and classify time per batch.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.insert_seconds = Histogram(
            "finpulse_stream_insert_seconds", "ClickHouse insert time per batch (retries included).",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.publish_to_stored_seconds = Histogram(
            "finpulse_stream_publish_to_stored_seconds",
            "Event time (published_at) to stored, per live document.",
            buckets=AGE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.insert_retries = Counter(
            "finpulse_stream_insert_retries", "ClickHouse insert attempts that failed and were retried.",
            registry=registry,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "finpulse_stream_consumer_lag",
            "Messages in the partition not stored yet (high-water mark minus next unstored offset).",
            ["topic", "partition"], registry=registry,
        )  # fmt: skip
        self.last_batch_timestamp = Gauge(
            "finpulse_stream_last_batch_timestamp_seconds", "When the last batch was stored (epoch s).",
            registry=registry,
        )  # fmt: skip
        self.model = Info("finpulse_model", "Model version and inference backend in use.", registry=registry)
        for label, _ in (*_REASON_CLASSES, ("other", "")):
            self.dead_letters.labels(label)  # every reason is a series from the start, at 0
        self._lag_labels: set[tuple[str, str]] = set()
        self._total_lag = 0
        self._last_batch_at: float | None = None
        self._started_at = time.time()
        # Until the first batch, "last batch" is the start: a worker that never stores still ages.
        self.last_batch_timestamp.set(self._started_at)

    def observe_batch(
        self, prepared: PreparedBatch, dead_letters: Iterable[DeadLetter], infer_s: float, insert_s: float
    ) -> None:
        """Record one stored batch (call after its rows are stored)."""
        now = datetime.now(UTC)
        letters = list(dead_letters)
        self.stored.inc(prepared.size)
        for letter in letters:
            self.dead_letters.labels(reason_class(letter.reason)).inc()
        self.batches.inc()
        self.batch_size.observe(prepared.size + len(letters))
        self.inference_seconds.observe(infer_s)
        self.insert_seconds.observe(insert_s)
        for doc in prepared.by_run.get("live", ()):
            self.publish_to_stored_seconds.observe(max(0.0, (now - doc.published_at).total_seconds()))
        self._last_batch_at = now.timestamp()
        self.last_batch_timestamp.set(self._last_batch_at)

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Replace the per-partition lag (partitions no longer assigned disappear)."""
        labels = {(topic, str(partition)): value for (topic, partition), value in lag.items()}
        for gone in self._lag_labels - labels.keys():
            self.consumer_lag.remove(*gone)
        for key, value in labels.items():
            self.consumer_lag.labels(*key).set(value)
        self._lag_labels = set(labels)
        self._total_lag = sum(labels.values())

    def last_progress(self) -> float:
        """Epoch seconds of the last sign of progress: a stored batch, or now when nothing waits."""
        if self._total_lag <= 0:
            return time.time()
        return self._last_batch_at or self._started_at
