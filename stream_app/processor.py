"""The stream stage's logic, independent of Faust: decode -> classify -> store.

Lifecycle: `BatchProcessor(classifier, writer, ...)` -> `process(messages)` per micro-batch, or its
two halves `prepare(messages)` (decode + classify) then `store(prepared)` so that the agent can
classify batch k+1 while batch k is inserted (blocking calls; the agent runs them in worker threads)
-> `close()`.
A batch is either fully stored (then the caller may acknowledge it) or `process` raises
`StorageUnavailable` (then the caller must stop without acknowledging).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.schema import RUN_ID_HEADER, Document, DocumentError, decode_document
from models.base import Classifier, Prediction
from storage.writer import BatchWriter, ClassifiedBatch, DeadLetter

REASON_HEADER = "finpulse-dlq-reason"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One Kafka record as the agent received it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None


@dataclass
class PreparedBatch:
    """A decoded and classified micro-batch, not stored yet."""

    by_run: dict[str, list[Document]] = field(default_factory=dict)
    predictions: list[Prediction] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    decode_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def size(self) -> int:
        """Valid documents in the batch."""
        return sum(len(run_docs) for run_docs in self.by_run.values())


@dataclass
class BatchResult:
    """What one micro-batch did."""

    stored: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class BatchProcessor:
    """Turns raw messages into stored classifications; bad input becomes dead letters."""

    def __init__(
        self, classifier: Classifier, writer: BatchWriter, run_id: str = "live", worker: str = ""
    ) -> None:
        self._classifier = classifier
        self._writer = writer
        self._run_id = run_id
        self._worker = worker

    def process(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Decode, classify (one model call per batch) and store; raises StorageUnavailable."""
        return self.store(self.prepare(messages))

    def prepare(self, messages: Sequence[RawMessage]) -> PreparedBatch:
        """Decode and classify, without touching storage (so it can overlap the previous insert)."""
        prepared = PreparedBatch()
        started = time.perf_counter()
        for message in messages:
            try:
                if message.value is None:
                    raise DocumentError("empty message value")
                run_id = message.header(RUN_ID_HEADER) or self._run_id
                document = decode_document(message.value)  # first: a bad one must not leave an empty run
                prepared.by_run.setdefault(run_id, []).append(document)
            except DocumentError as exc:
                prepared.dead_letters.append(
                    DeadLetter(
                        message.topic, message.partition, message.offset, str(exc), message.value or b""
                    )
                )
        prepared.decode_ms = (time.perf_counter() - started) * 1000
        docs = [doc for run_docs in prepared.by_run.values() for doc in run_docs]
        infer_started = time.perf_counter()
        prepared.predictions = self._classifier.predict_batch([doc.content for doc in docs]) if docs else []
        prepared.inference_ms = (time.perf_counter() - infer_started) * 1000
        return prepared

    def store(self, prepared: PreparedBatch) -> BatchResult:
        """Write a prepared batch (rows, batch metrics, dead letters); raises StorageUnavailable."""
        result = BatchResult(dead_letters=prepared.dead_letters)
        stored = prepared.size
        insert_ms = 0.0
        position = 0
        for run_id, run_docs in prepared.by_run.items():
            run_predictions = prepared.predictions[position : position + len(run_docs)]
            position += len(run_docs)
            insert_ms += self._writer.write(
                ClassifiedBatch(
                    run_id=run_id,
                    documents=run_docs,
                    predictions=run_predictions,
                    model_version=self._classifier.model_version,
                    backend=self._classifier.backend,
                    worker=self._worker,
                    archive=run_id == "live",
                    invalid=len(prepared.dead_letters),
                    decode_ms=prepared.decode_ms,
                    inference_ms=prepared.inference_ms * len(run_docs) / stored,
                )
            )
        if prepared.dead_letters:
            self._writer.write_dead_letters(prepared.dead_letters)
        result.stored = stored
        result.timings_ms = {
            "decode": prepared.decode_ms,
            "infer": prepared.inference_ms,
            "insert": insert_ms,
        }
        return result

    def close(self) -> None:
        self._classifier.close()
