"""The stream stage's logic, independent of Faust: decode -> classify -> store.

Lifecycle: `BatchProcessor(classifier, writer, ...)` -> `process(messages)` per micro-batch
(blocking; the Faust agent runs it in a worker thread) -> `close()`.
A batch is either fully stored (then the caller may acknowledge it) or `process` raises
`StorageUnavailable` (then the caller must stop without acknowledging).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.schema import Document, DocumentError, decode_document
from models.base import Classifier
from storage.writer import BatchWriter, ClassifiedBatch, DeadLetter

RUN_ID_HEADER = "finpulse-run-id"
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
        result = BatchResult()
        started = time.perf_counter()
        by_run: dict[str, list[Document]] = defaultdict(list)
        for message in messages:
            try:
                if message.value is None:
                    raise DocumentError("empty message value")
                by_run[message.header(RUN_ID_HEADER) or self._run_id].append(decode_document(message.value))
            except DocumentError as exc:
                result.dead_letters.append(
                    DeadLetter(
                        message.topic, message.partition, message.offset, str(exc), message.value or b""
                    )
                )
        decode_ms = (time.perf_counter() - started) * 1000
        docs = [doc for run_docs in by_run.values() for doc in run_docs]
        infer_started = time.perf_counter()
        predictions = self._classifier.predict_batch([doc.content for doc in docs]) if docs else []
        inference_ms = (time.perf_counter() - infer_started) * 1000
        insert_ms = 0.0
        position = 0
        for run_id, run_docs in by_run.items():
            run_predictions = predictions[position : position + len(run_docs)]
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
                    invalid=len(result.dead_letters),
                    decode_ms=decode_ms,
                    inference_ms=inference_ms * len(run_docs) / len(docs),
                )
            )
        if result.dead_letters:
            self._writer.write_dead_letters(result.dead_letters)
        result.stored = len(docs)
        result.timings_ms = {"decode": decode_ms, "infer": inference_ms, "insert": insert_ms}
        return result

    def close(self) -> None:
        self._classifier.close()
