"""Composition root of the stream worker process: settings -> clients -> processor -> Faust worker."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

import faust

from ingest.ops import OpsServer, process_registry, recent_progress_check, tcp_check
from ingest.publisher import ensure_topics
from ingest.topics import KafkaSettings
from models.settings import ModelSettings
from storage.client import connect, readiness_check
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter
from stream_app.app import create_app
from stream_app.metrics import StreamMetrics
from stream_app.processor import BatchProcessor
from stream_app.settings import StreamSettings

log = logging.getLogger(__name__)


def run_worker(
    stream: StreamSettings,
    kafka: KafkaSettings,
    clickhouse: ClickHouseSettings,
    model: ModelSettings,
) -> None:
    """Run one stream worker until it is stopped (SIGINT/SIGTERM)."""
    from models.runtime import load_classifier

    registry = process_registry()
    metrics = StreamMetrics(registry)
    ops = None
    if stream.ops_port is not None:
        # Served first, so that a worker failing at start-up is seen (not ready) rather than absent.
        ops = OpsServer(
            stream.ops_host, stream.ops_port, registry, {"kafka": tcp_check(kafka.bootstrap_servers)}
        )
        ops.start()
    client = connect(clickhouse)
    # Readiness asks ClickHouse on its own connection: the writer's may be busy retrying an insert.
    health_client = connect(clickhouse) if clickhouse.mode == "server" else client
    if ops is not None:
        ops.add_check("clickhouse", readiness_check(health_client))
        ops.add_check("progress", recent_progress_check(metrics.last_progress, stream.stall_after_s, "batch"))
    try:
        migrate(client, clickhouse.retention_days)
        ensure_topics(kafka, stream.input_topics)
        classifier = load_classifier(model)
        worker_name = stream.worker_name or f"{socket.gethostname()}-{os.getpid()}"
        log.info(
            "stream worker %s: model %s on %s", worker_name, classifier.model_version, classifier.backend
        )
        metrics.model.info({"model_version": classifier.model_version, "backend": classifier.backend})
        writer = BatchWriter(client, clickhouse, on_retry=metrics.insert_retries.inc)
        processor = BatchProcessor(classifier, writer, stream.run_id, worker_name)
        datadir = Path(tempfile.mkdtemp(prefix="finpulse-faust-"))
        app = create_app(stream, kafka, processor, datadir, metrics=metrics)
        try:
            faust.Worker(app, loglevel=stream.log_level, quiet=True).execute_from_commandline()
        finally:
            processor.close()
    finally:
        if ops is not None:
            ops.stop()
        if health_client is not client:
            health_client.close()
        client.close()
