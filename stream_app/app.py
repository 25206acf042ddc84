"""Faust app factory: one agent that micro-batches the input topics through a BatchProcessor.

Nothing is built at import time: `create_app(...)` is called by the composition root.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faust

from ingest.settings import KafkaSettings
from storage.writer import StorageUnavailable
from stream_app.processor import REASON_HEADER, BatchProcessor, BatchResult, RawMessage
from stream_app.settings import StreamSettings

log = logging.getLogger(__name__)

# Exit code when ClickHouse stays down past the retry budget: the batch was not acknowledged,
# so a restarted worker (compose `restart: unless-stopped`, systemd, k8s) re-reads it.
EXIT_STORAGE_UNAVAILABLE = 75


def create_app(
    stream: StreamSettings,
    kafka: KafkaSettings,
    processor: BatchProcessor,
    datadir: Path,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> faust.App:
    """Build the Faust app with its classify agent; `processor` is owned by the caller."""
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
    topics = stream.input_topics or [kafka.raw_topic]
    source = app.topic(*topics, key_type=bytes, value_type=bytes)
    dlq = app.topic(kafka.dlq_topic, key_type=bytes, value_type=bytes)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finpulse-batch")

    # concurrency=1: faust-streaming may commit past an in-flight message with concurrency > 1
    # (faust-streaming issue #606); scale out with partitions and workers instead.
    @app.agent(source, concurrency=1, name="classify")
    async def classify(stream_: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream_.take_events(stream.max_batch, within=stream.max_wait_s):
            messages = [
                RawMessage(
                    topic=event.message.topic,
                    partition=event.message.partition,
                    offset=event.message.offset,
                    value=event.message.value,
                    headers=tuple((k, bytes(v)) for k, v in (event.message.headers or ())),
                )
                for event in events
            ]
            try:
                result = await loop.run_in_executor(executor, processor.process, messages)
            except StorageUnavailable as exc:
                # take_events() acknowledges the batch when this body ends, even by an exception:
                # leave the process now, before that happens, so the offsets are never committed.
                log.critical("ClickHouse unavailable, stopping without acknowledging the batch: %s", exc)
                os._exit(EXIT_STORAGE_UNAVAILABLE)
            await _send_dead_letters(app, dlq, result)
            if on_batch is not None:
                on_batch(result)

    return app


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
