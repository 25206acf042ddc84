"""Faust app factory: one agent that micro-batches the input topics through a BatchProcessor.

Nothing is built at import time: `create_app(...)` is called by the composition root.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT

from ingest.topics import KafkaSettings
from storage.writer import StorageUnavailable
from stream_app.batch_policy import AdaptiveBatchPolicy, FixedBatchPolicy
from stream_app.metrics import StreamMetrics
from stream_app.processor import REASON_HEADER, BatchProcessor, BatchResult, PreparedBatch, RawMessage
from stream_app.settings import StreamSettings

log = logging.getLogger(__name__)

# Exit code when ClickHouse stays down past the retry budget: the batch was not acknowledged,
# so a restarted worker (compose `restart: unless-stopped`, systemd, k8s) re-reads it.
EXIT_STORAGE_UNAVAILABLE = 75
# How often the consumer lag gauge is refreshed (independent of batches, so a stall shows).
LAG_INTERVAL_S = 1.0


def create_app(
    stream: StreamSettings,
    kafka: KafkaSettings,
    processor: BatchProcessor,
    datadir: Path,
    on_batch: Callable[[BatchResult], None] | None = None,
    metrics: StreamMetrics | None = None,
) -> faust.App:
    """Build the Faust app with its classify agent; `processor` and `metrics` belong to the caller."""
    app = faust.App(
        stream.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers],
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        broker_commit_interval=stream.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=stream.buffer_maxsize,
        producer_acks=-1,
        web_enabled=stream.web_port is not None,
        web_port=stream.web_port or 6066,
        datadir=str(datadir),
        agent_supervisor="mode.CrashingSupervisor",
    )
    if stream.fetch_max_wait_ms is not None:
        _cap_fetch_wait(app, stream.fetch_max_wait_ms)
    topics = stream.input_topics or [kafka.raw_topic]
    source = app.topic(*topics, key_type=bytes, value_type=bytes)
    dlq = app.topic(kafka.dlq_topic, key_type=bytes, value_type=bytes)

    # concurrency=1: faust-streaming may commit past an in-flight message with concurrency > 1
    # (faust-streaming issue #606); scale out with partitions and workers instead.
    @app.agent(source, concurrency=1, name="classify")
    async def classify(stream_: faust.StreamT) -> None:
        await BatchPipeline(app, dlq, processor, stream, on_batch, metrics).run(stream_.noack())

    return app


def _cap_fetch_wait(app: faust.App, wait_ms: int) -> None:
    """Set the consumer's fetch wait, which faust-streaming hard-codes to 1.5 s for aiokafka.

    Kafka answers a fetch as soon as data arrives, so the wait only matters on an idle topic; the
    Tansu broker holds every fetch for the whole wait, which adds up to 1.5 s to each message.
    """
    new_consumer = app._new_consumer

    def new_consumer_with_wait() -> Any:
        consumer = new_consumer()
        thread = consumer._thread
        create = thread._create_worker_consumer

        def create_with_wait(transport: Any) -> Any:
            client = create(transport)
            client._fetch_max_wait_ms = wait_ms  # read when aiokafka starts its fetcher
            return client

        thread._create_worker_consumer = create_with_wait
        return consumer

    app._new_consumer = new_consumer_with_wait


class BatchPipeline:
    """Micro-batches a manually acknowledged stream through the processor, two stages deep.

    A reader task queues events (bounded by `queue_maxsize`: when full, the stream waits). The
    loop takes a batch when the batching policy says so, classifies it in the inference thread and
    hands it to the insert thread; while batch k is inserted, batch k+1 is classified. Batch k is
    acknowledged only after its rows (and dead letters) are stored, and batches are stored and
    acknowledged in order, so committed offsets never pass an unstored message.
    """

    def __init__(
        self,
        app: faust.App,
        dlq: faust.TopicT,
        processor: BatchProcessor,
        settings: StreamSettings,
        on_batch: Callable[[BatchResult], None] | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self._app = app
        self._metrics = metrics
        # Per (topic, partition): the first offset read, and the offset after the last one stored.
        self._first_read: dict[tuple[str, int], int] = {}
        self._stored_upto: dict[tuple[str, int], int] = {}
        self._dlq = dlq
        self._processor = processor
        self._on_batch = on_batch
        self._max_batch = settings.max_batch
        self._maxsize = max(settings.queue_maxsize, settings.max_batch)
        self._overlap = settings.overlap_insert
        self._policy: AdaptiveBatchPolicy | FixedBatchPolicy = (
            AdaptiveBatchPolicy(settings.min_batch, settings.max_batch, settings.max_wait_s)
            if settings.adaptive_batching
            else FixedBatchPolicy(settings.max_batch, settings.max_wait_s)
        )
        self._queue: deque[tuple[EventT, float]] = deque()
        self._wake_at = 1  # the reader wakes the batching loop when this many events are queued
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._failure: BaseException | None = None
        self._infer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finpulse-infer")
        self._insert_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="finpulse-insert")
            if self._overlap
            else self._infer_thread
        )

    async def run(self, stream_: faust.StreamT) -> None:
        """Process the stream until the agent is stopped; a failure stops the agent (no ack)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.create_task(self._read(stream_))
        lag_watch = asyncio.create_task(self._watch_lag()) if self._metrics is not None else None
        storing: asyncio.Task | None = None
        try:
            while True:
                events = await self._next_batch()
                messages = [_raw(event) for event in events]
                started = time.monotonic()
                prepared = await loop.run_in_executor(self._infer_thread, self._processor.prepare, messages)
                infer_s = time.monotonic() - started
                if storing is not None:
                    await storing  # batch k-1 is stored (and acknowledged) before batch k is written
                storing = asyncio.create_task(self._store(stream_, events, prepared, infer_s))
                if not self._overlap:
                    await storing
                    storing = None
        finally:
            reader.cancel()
            if lag_watch is not None:
                lag_watch.cancel()
            if storing is not None:
                storing.cancel()  # its batch stays unacknowledged and is delivered again
            self._infer_thread.shutdown(wait=False)
            self._insert_thread.shutdown(wait=False)

    async def _read(self, stream_: faust.StreamT) -> None:
        try:
            async for event in stream_.events():
                while len(self._queue) >= self._maxsize:
                    self._space.clear()
                    await self._space.wait()
                now = time.monotonic()
                self._queue.append((event, now))
                if self._metrics is not None:
                    self._metrics.received.inc()
                    message = event.message
                    self._first_read.setdefault((message.topic, message.partition), message.offset)
                self._policy.observe_arrivals(1, now)
                if len(self._queue) >= self._wake_at:
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        self._wake.set()

    async def _next_batch(self) -> list[EventT]:
        loop = asyncio.get_running_loop()
        while True:
            if self._failure is not None:
                raise self._failure
            now = time.monotonic()
            if self._queue:
                plan = self._policy.plan(len(self._queue), now)
                delay = self._queue[0][1] + plan.wait_s - now
                if len(self._queue) >= plan.size or delay <= 0:
                    count = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft()[0] for _ in range(count)]
                    self._space.set()
                    return batch
                self._wake_at = plan.size
            else:
                self._wake_at, delay = 1, None
            self._wake.clear()
            timer = loop.call_later(delay, self._wake.set) if delay is not None else None
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    async def _store(
        self, stream_: faust.StreamT, events: list[EventT], prepared: PreparedBatch, infer_s: float
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            try:
                result = await loop.run_in_executor(self._insert_thread, self._processor.store, prepared)
            except StorageUnavailable as exc:
                # The batch is not acknowledged: leave now, so a restarted worker reads it again.
                log.critical("ClickHouse unavailable, stopping without acknowledging the batch: %s", exc)
                os._exit(EXIT_STORAGE_UNAVAILABLE)
            insert_s = time.monotonic() - started
            if self._overlap:
                self._policy.observe_stage("infer", len(events), infer_s)
                self._policy.observe_stage("insert", len(events), insert_s)
            else:
                self._policy.observe_stage("batch", len(events), infer_s + insert_s)
            await _send_dead_letters(self._app, self._dlq, result)
            if self._on_batch is not None:
                self._on_batch(result)
            for event in events:
                await stream_.ack(event)
            if self._metrics is not None:
                self._metrics.observe_batch(prepared, result.dead_letters, infer_s, insert_s)
                for event in events:
                    key = (event.message.topic, event.message.partition)
                    self._stored_upto[key] = max(self._stored_upto.get(key, 0), event.message.offset + 1)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)
            raise

    async def _watch_lag(self) -> None:
        """Refresh the lag gauge every LAG_INTERVAL_S from the consumer's high-water marks."""
        consumer = self._app.consumer
        while True:
            try:
                lag = {}
                for tp in consumer.assignment():
                    highwater = consumer.highwater(tp)
                    key = (tp.topic, tp.partition)
                    position = self._stored_upto.get(key, self._first_read.get(key))
                    if position is None:  # nothing read from it yet: lag behind the fetch position
                        position = await consumer.position(tp)
                    if highwater is not None and position is not None:
                        lag[key] = max(0, highwater - position)
                self._metrics.set_lag(lag)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a metrics refresh must never stop the agent
                log.debug("consumer lag refresh failed: %s", exc)
            await asyncio.sleep(LAG_INTERVAL_S)


def _raw(event: EventT) -> RawMessage:
    message = event.message
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        value=message.value,
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
    )


async def _send_dead_letters(app: faust.App, dlq: faust.TopicT, result: BatchResult) -> None:
    for letter in result.dead_letters:
        await dlq.send(
            key=f"{letter.topic}:{letter.partition}:{letter.offset}".encode(),
            value=letter.payload,
            headers=[
                (REASON_HEADER, letter.reason.encode()),
                ("finpulse-source-topic", letter.topic.encode()),
            ],
        )
    if result.dead_letters:
        await app.producer.flush()
