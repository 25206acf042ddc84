"""Batch writer: Documents + Predictions -> ClickHouse rows, with bounded retry.

Lifecycle: `BatchWriter(client, settings)` -> `write(batch)` per micro-batch -> (client closed by owner).
`write` returns when every row is either stored or rejected: a row ClickHouse cannot hold (a time
outside DateTime's range, a value the driver cannot encode) is refused before the insert, and a
permanent error (`StorageError.transient` False) splits the insert in halves until the offending
rows stand alone; they come back in `WriteResult.rejected` with the reason, for the dead-letter
path, while the rest is stored. Transient errors are retried (`ingest.retry`); after
`insert_attempts` failures `write` raises `StorageUnavailable` and the caller must stop without
acknowledging the batch. The same checks run before chDB, which would clamp such times silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from ingest.retry import RetriesExhausted, RetryPolicy, call_with_retries
from ingest.schema import DATETIME_MAX, DATETIME_MIN, Document
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
# pipeline_latency_ms is a UInt32 (49.7 days): a replay of older archive data saturates it.
LATENCY_MAX_MS = 2**32 - 1


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


@dataclass
class WriteResult:
    """What `write` did: its insert time, and the documents refused (index in the batch -> reason)."""

    insert_ms: float = 0.0
    rejected: dict[int, str] = field(default_factory=dict)


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
    latency_ms = min(max(0, int((stored_at - doc.ingested_at).total_seconds() * 1000)), LATENCY_MAX_MS)
    return (
        batch.run_id, doc.doc_id, doc.story_id, doc.source, doc.kind, doc.published_at, doc.ingested_at,
        stored_at, headline(doc), doc.url, list(doc.tickers), pred.topic, pred.topic_prob, pred.sentiment,
        pred.p_negative, pred.p_neutral, pred.p_positive, pred.score, pred.confidence,
        batch.model_version, per_doc_ms, latency_ms, len(batch.documents),
    )  # fmt: skip


def row_problem(doc: Document) -> str | None:
    """Why ClickHouse cannot store this document's times (None when it can)."""
    for name in ("published_at", "ingested_at"):
        value = getattr(doc, name)
        if not DATETIME_MIN <= value <= DATETIME_MAX:
            return f"storage rejected: {name} {value.isoformat()} outside ClickHouse DateTime's range"
    return None


class BatchWriter:
    """Stores classified batches; retries transient errors, isolates rows that fail permanently."""

    def __init__(
        self,
        client: ClickHouseClient,
        settings: ClickHouseSettings,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_retry` is called after each failed attempt that will be retried (for metrics)."""
        self._client = client
        self._policy = RetryPolicy(
            settings.insert_attempts, settings.insert_backoff_s, settings.insert_backoff_max_s
        )
        self._sleep = sleep
        self._on_retry = on_retry
        db = client.database
        self._documents = f"{db}.documents"
        self._classifications = f"{db}.classifications"
        self._batches = f"{db}.pipeline_batches"
        self._dead_letters = f"{db}.dead_letters"

    def write(self, batch: ClassifiedBatch) -> WriteResult:
        """Store the batch (archive, classifications, batch metrics); see the module docstring."""
        if len(batch.documents) != len(batch.predictions):
            raise ValueError("documents and predictions differ in length")
        started = time.perf_counter()
        docs = batch.documents
        rejected = {i: problem for i, doc in enumerate(docs) if (problem := row_problem(doc))}
        keep = [i for i in range(len(docs)) if i not in rejected]
        if keep and batch.archive:
            rows = [document_row(docs[i]) for i in keep]
            rejected |= self._insert_isolating(self._documents, DOCUMENT_COLUMNS, rows, keep)
            keep = [i for i in keep if i not in rejected]
        if keep:
            stored_at = datetime.now(UTC)
            per_doc_ms = batch.inference_ms / len(docs)
            rows = [
                classification_row(docs[i], batch.predictions[i], batch, stored_at, per_doc_ms) for i in keep
            ]
            rejected |= self._insert_isolating(self._classifications, CLASSIFICATION_COLUMNS, rows, keep)
        for index, reason in sorted(rejected.items()):
            log.warning("document %s not stored: %s", docs[index].doc_id, reason)
        insert_ms = (time.perf_counter() - started) * 1000
        metrics = (
            batch.worker, batch.run_id, datetime.now(UTC), len(docs) - len(rejected),
            batch.invalid + len(rejected), batch.decode_ms, batch.inference_ms, insert_ms,
            batch.model_version, batch.backend,
        )  # fmt: skip
        self._insert_isolating(self._batches, BATCH_COLUMNS, [metrics], [0])
        return WriteResult(insert_ms, dict(sorted(rejected.items())))

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Record dead letters (they also go to the DLQ topic) for the health dashboard."""
        now = datetime.now(UTC)
        rows = [
            (now, d.topic, d.partition, d.offset, d.reason, d.payload.decode("utf-8", "replace")[:10_000])
            for d in letters
        ]
        for index, reason in self._insert_isolating(
            self._dead_letters, DEAD_LETTER_COLUMNS, rows, list(range(len(rows)))
        ).items():
            log.error("dead letter %s:%s:%s not recorded: %s", *rows[index][1:4], reason)

    def _insert_isolating(
        self, table: str, columns: Sequence[str], rows: list[tuple], ids: list[int]
    ) -> dict[int, str]:
        """Insert `rows`; on a permanent error, split in halves down to single rows. Returns the ids
        of the rows refused on their own, with the reason. Raises StorageUnavailable."""
        try:
            self._retrying(table, columns, rows)
            return {}
        except StorageError as exc:  # permanent: transient ones were retried into StorageUnavailable
            if len(rows) == 1:
                return {ids[0]: f"storage rejected: {exc}"}
            mid = len(rows) // 2
            return self._insert_isolating(table, columns, rows[:mid], ids[:mid]) | self._insert_isolating(
                table, columns, rows[mid:], ids[mid:]
            )

    def _retrying(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return

        def warn(attempt: int, exc: Exception, pause: float) -> None:
            log.warning("insert into %s failed (attempt %d/%d), retrying in %.1fs: %s",
                        table, attempt, self._policy.max_attempts, pause, exc)  # fmt: skip
            self._on_retry()

        try:
            call_with_retries(
                lambda _: self._client.insert(table, columns, rows),
                self._policy,
                is_transient=lambda exc: isinstance(exc, StorageError) and exc.transient,
                sleep=self._sleep,
                on_retry=warn,
            )
        except RetriesExhausted as exc:
            raise StorageUnavailable(f"insert into {table} failed {exc.attempts} times: {exc.last}") from exc
