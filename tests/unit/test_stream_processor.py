"""The stream stage's logic with a fake model and an in-memory writer (no Faust, no ClickHouse)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ingest.records import to_document
from models.base import Prediction
from storage.writer import ClassifiedBatch, DeadLetter, StorageUnavailable, WriteResult
from stream_app.processor import RUN_ID_HEADER, BatchProcessor, RawMessage


class KeywordModel:
    """Negative when the text says 'plunge': enough to check the wiring."""

    model_version = "kw-1"
    backend = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(len(texts))
        return [
            Prediction(
                "markets",
                0.9,
                *(("negative", 0.9, 0.05, 0.05) if "plunge" in t else ("neutral", 0.1, 0.8, 0.1)),
            )
            for t in texts
        ]

    def close(self) -> None:
        pass


class MemoryWriter:
    def __init__(self, fail: bool = False, refuse: str = "") -> None:
        self.batches: list[ClassifiedBatch] = []
        self.dead: list[DeadLetter] = []
        self.fail = fail
        self.refuse = refuse  # titles containing this are refused as ClickHouse refuses a bad row

    def write(self, batch: ClassifiedBatch) -> WriteResult:
        if self.fail:
            raise StorageUnavailable("down")
        self.batches.append(batch)
        refused = {
            i: "storage rejected: test"
            for i, d in enumerate(batch.documents)
            if self.refuse and self.refuse in d.title
        }
        return WriteResult(1.0, refused)

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self.dead.extend(letters)


def _message(offset: int, title: str | None, run_id: str | None = None) -> RawMessage:
    value = None if title is None else to_document({"id": str(offset), "title": title}, "wire").to_json()
    headers = ((RUN_ID_HEADER, run_id.encode()),) if run_id else ()
    return RawMessage("raw", 0, offset, value, headers)


def test_one_model_call_per_batch_and_dead_letters_with_reasons() -> None:
    model, writer = KeywordModel(), MemoryWriter()
    processor = BatchProcessor(model, writer)
    messages = [_message(0, "ACME shares plunge"), _message(1, "Fed holds"), _message(2, None)]
    messages.append(RawMessage("raw", 0, 3, b"{broken"))
    result = processor.process(messages)
    assert model.calls == [2]
    assert result.stored == 2
    (batch,) = writer.batches
    assert [p.sentiment for p in batch.predictions] == ["negative", "neutral"]
    assert batch.run_id == "live" and batch.archive and batch.model_version == "kw-1"
    assert [d.offset for d in result.dead_letters] == [2, 3]
    assert result.dead_letters[0].reason == "empty message value"
    assert result.dead_letters[1].reason.startswith("not JSON")
    assert writer.dead == result.dead_letters


def test_replayed_messages_keep_their_run_id_and_skip_the_archive() -> None:
    writer = MemoryWriter()
    BatchProcessor(KeywordModel(), writer).process([_message(0, "a"), _message(1, "b", run_id="replay-7")])
    assert {(b.run_id, b.archive, len(b.documents)) for b in writer.batches} == {
        ("live", True, 1),
        ("replay-7", False, 1),
    }


def test_storage_failure_propagates_so_the_batch_is_not_acknowledged() -> None:
    with pytest.raises(StorageUnavailable):
        BatchProcessor(KeywordModel(), MemoryWriter(fail=True)).process([_message(0, "a")])


def test_rows_refused_by_storage_become_dead_letters_and_the_rest_is_stored() -> None:
    writer = MemoryWriter(refuse="poison")
    messages = [_message(0, "a"), _message(1, "poison row"), _message(2, "b", run_id="replay-7")]
    result = BatchProcessor(KeywordModel(), writer).process(messages)
    assert result.stored == 2
    assert [(d.offset, d.reason) for d in result.dead_letters] == [(1, "storage rejected: test")]
    assert result.dead_letters[0].payload == messages[1].value and writer.dead == result.dead_letters


def test_a_malformed_run_id_header_is_a_dead_letter() -> None:
    writer = MemoryWriter()
    result = BatchProcessor(KeywordModel(), writer).process([_message(0, "a", run_id="bad id\x1f")])
    assert result.stored == 0 and "not a valid run id" in result.dead_letters[0].reason


def test_a_batch_of_only_bad_messages_is_dead_lettered_without_crashing() -> None:
    model, writer = KeywordModel(), MemoryWriter()
    result = BatchProcessor(model, writer).process([RawMessage("raw", 0, 0, b"{broken"), _message(1, None)])
    assert result.stored == 0 and [d.offset for d in result.dead_letters] == [0, 1]
    assert model.calls == [] and writer.batches == []
