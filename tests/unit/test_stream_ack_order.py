"""BatchPipeline acknowledges in order, and only after a batch is stored (a fake stream and processor)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from stream_app.app import BatchPipeline
from stream_app.processor import BatchResult
from stream_app.settings import StreamSettings


@dataclass
class FakeMessage:
    offset: int
    topic: str = "finpulse.docs.raw"
    partition: int = 0
    value: bytes = b"{}"
    headers: tuple = ()


@dataclass
class FakeEvent:
    message: FakeMessage


@dataclass
class FakeStream:
    """Yields `count` events, then waits like an idle topic; records every acknowledgement."""

    count: int
    timeline: list[tuple[str, Any]]
    acked: list[int] = field(default_factory=list)

    async def events(self):
        for offset in range(self.count):
            yield FakeEvent(FakeMessage(offset))
        await asyncio.Event().wait()

    async def ack(self, event: FakeEvent) -> None:
        self.acked.append(event.message.offset)
        self.timeline.append(("ack", event.message.offset))


class FakeProcessor:
    """`prepare` passes the offsets through; `store` takes a while (so inference overlaps it)."""

    def __init__(self, timeline: list[tuple[str, Any]], fail_on_batch: int | None = None) -> None:
        self.timeline = timeline
        self.fail_on_batch = fail_on_batch
        self.batches = 0
        self._lock = threading.Lock()

    def prepare(self, messages: list) -> list[int]:
        return [m.offset for m in messages]

    def store(self, offsets: list[int]) -> BatchResult:
        with self._lock:
            self.batches += 1
            if self.batches == self.fail_on_batch:
                raise RuntimeError("insert failed")
        time.sleep(0.01)
        self.timeline.append(("stored", tuple(offsets)))
        return BatchResult(stored=len(offsets))


def _pipeline(processor: FakeProcessor) -> BatchPipeline:
    settings = StreamSettings(max_batch=4, max_wait_s=0.01, adaptive_batching=False, overlap_insert=True)
    return BatchPipeline(app=None, dlq=None, processor=processor, settings=settings)  # type: ignore[arg-type]


async def _run_until(pipeline: BatchPipeline, stream: FakeStream, done: Any) -> BaseException | None:
    task = asyncio.create_task(pipeline.run(stream))
    deadline = time.monotonic() + 5
    while not done() and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if task.done():
        return task.exception()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return None


def test_acknowledges_every_offset_in_order_after_its_batch_is_stored() -> None:
    timeline: list[tuple[str, Any]] = []
    stream = FakeStream(count=23, timeline=timeline)
    asyncio.run(_run_until(_pipeline(FakeProcessor(timeline)), stream, lambda: len(stream.acked) == 23))

    assert stream.acked == list(range(23))
    stored_so_far: set[int] = set()
    for kind, value in timeline:
        if kind == "stored":
            stored_so_far.update(value)
        else:
            assert value in stored_so_far, f"offset {value} acknowledged before its batch was stored"


def test_a_failed_insert_acknowledges_nothing_from_that_batch_on() -> None:
    timeline: list[tuple[str, Any]] = []
    stream = FakeStream(count=12, timeline=timeline)
    processor = FakeProcessor(timeline, fail_on_batch=2)
    error = asyncio.run(_run_until(_pipeline(processor), stream, lambda: False))

    assert isinstance(error, RuntimeError)
    stored = sorted(o for kind, batch in timeline if kind == "stored" for o in batch)
    assert stream.acked == stored  # exactly the stored prefix, in order
    assert stream.acked == list(range(len(stream.acked)))
    assert len(stream.acked) < 12
