"""Batch writer: Documents + Predictions -> ClickHouse rows, with bounded retry.

Lifecycle: `BatchWriter(client, settings)` -> `write(batch)` per micro-batch -> (client closed by owner).
`write` returns only when every row is stored; after `insert_attempts` failures it raises
`StorageUnavailable` and the caller must stop without acknowledging the batch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ingest.schema import Document
from models.base import Prediction
from storage.client import ClickHouseClient, StorageError
from storage.settings import ClickHouseSettings

log = logging.getLogger(__name__)

DOCUMENT_COLUMNS = (
    "doc_id", "story_id", "source", "kind", "published_at", "ingested_at",
    "title", "text", "url", "lang", "tickers", "meta",
)  # fmt: skip
CLASSIFICATION_COLUMNS = (
    "run_id", "doc_id", "story_id", "source", "kind", "published_at", "ingested_at", "stored_at",
    "title", "url", "tickers", "topic", "topic_prob", "sentiment", "p_negative", "p_neutral",
    "p_positive", "score", "confidence", "model_version", "inference_ms", "pipeline_latency_ms", "batch_size",
)  # fmt: skip
BATCH_COLUMNS = (
    "worker", "run_id", "stored_at", "batch_size", "invalid", "decode_ms", "inference_ms", "insert_ms",
    "model_version", "backend",
)  # fmt: skip
DEAD_LETTER_COLUMNS = ("received_at", "topic", "partition", "offset", "reason", "payload")


class StorageUnavailable(RuntimeError):
    """ClickHouse kept failing for longer than the retry budget."""


@dataclass
class ClassifiedBatch:
    """One micro-batch ready to store."""

    run_id: str
    documents: Sequence[Document]
    predictions: Sequence[Prediction]
    model_version: str
    backend: str = ""
    worker: str = ""
    archive: bool = True
    invalid: int = 0
    decode_ms: float = 0.0
    inference_ms: float = 0.0


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    reason: str
    payload: bytes


def document_row(doc: Document) -> tuple:
    """A `documents` (archive) row."""
    return (
        doc.doc_id, doc.story_id, doc.source, doc.kind, doc.published_at, doc.ingested_at,
        doc.title, doc.text, doc.url, doc.lang, list(doc.tickers), orjson.dumps(doc.meta).decode(),
    )  # fmt: skip


def headline(doc: Document, limit: int = 200) -> str:
    """What dashboards and alerts show for a document: its title, else the start of its text."""
    if doc.title:
        return doc.title
    text = " ".join(doc.text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def classification_row(
    doc: Document, pred: Prediction, batch: ClassifiedBatch, stored_at: datetime, per_doc_ms: float
) -> tuple:
    """A `classifications` row."""
    latency_ms = max(0, int((stored_at - doc.ingested_at).total_seconds() * 1000))
    return (
        batch.run_id, doc.doc_id, doc.story_id, doc.source, doc.kind, doc.published_at, doc.ingested_at,
        stored_at, headline(doc), doc.url, list(doc.tickers), pred.topic, pred.topic_prob, pred.sentiment,
        pred.p_negative, pred.p_neutral, pred.p_positive, pred.score, pred.confidence,
        batch.model_version, per_doc_ms, latency_ms, len(batch.documents),
    )  # fmt: skip


class BatchWriter:
    """Stores classified batches; retries with capped exponential backoff and jitter."""

    def __init__(
        self,
        client: ClickHouseClient,
        settings: ClickHouseSettings,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_retry` is called after each failed attempt that will be retried (for metrics)."""
        self._client = client
        self._settings = settings
        self._sleep = sleep
        self._on_retry = on_retry
        db = client.database
        self._documents = f"{db}.documents"
        self._classifications = f"{db}.classifications"
        self._batches = f"{db}.pipeline_batches"
        self._dead_letters = f"{db}.dead_letters"

    def write(self, batch: ClassifiedBatch) -> float:
        """Store the batch (archive, classifications, batch metrics); return the insert time in ms."""
        if len(batch.documents) != len(batch.predictions):
            raise ValueError("documents and predictions differ in length")
        started = time.perf_counter()
        if batch.documents:
            if batch.archive:
                self._retrying(self._documents, DOCUMENT_COLUMNS, [document_row(d) for d in batch.documents])
            stored_at = datetime.now(UTC)
            per_doc_ms = batch.inference_ms / len(batch.documents)
            rows = [
                classification_row(doc, pred, batch, stored_at, per_doc_ms)
                for doc, pred in zip(batch.documents, batch.predictions, strict=True)
            ]
            self._retrying(self._classifications, CLASSIFICATION_COLUMNS, rows)
        insert_ms = (time.perf_counter() - started) * 1000
        metrics = (
            batch.worker, batch.run_id, datetime.now(UTC), len(batch.documents), batch.invalid,
            batch.decode_ms, batch.inference_ms, insert_ms, batch.model_version, batch.backend,
        )  # fmt: skip
        self._retrying(self._batches, BATCH_COLUMNS, [metrics])
        return insert_ms

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Record dead letters (they also go to the DLQ topic) for the health dashboard."""
        now = datetime.now(UTC)
        rows = [
            (now, d.topic, d.partition, d.offset, d.reason, d.payload.decode("utf-8", "replace")[:10_000])
            for d in letters
        ]
        self._retrying(self._dead_letters, DEAD_LETTER_COLUMNS, rows)

    def _retrying(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        delay = self._settings.insert_backoff_s
        attempts = self._settings.insert_attempts
        for attempt in range(1, attempts + 1):
            try:
                self._client.insert(table, columns, rows)
                return
            except StorageError as exc:
                if attempt == attempts:
                    raise StorageUnavailable(f"insert into {table} failed {attempts} times: {exc}") from exc
                pause = min(delay, self._settings.insert_backoff_max_s) * random.uniform(0.5, 1.0)
                log.warning("insert into %s failed (attempt %d/%d), retrying in %.1fs: %s",
                            table, attempt, attempts, pause, exc)  # fmt: skip
                self._on_retry()
                self._sleep(pause)
                delay *= 2
