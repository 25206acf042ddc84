"""Composition root of the stream worker process: settings -> clients -> processor -> Faust worker."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

import faust

from ingest.publisher import ensure_topics
from ingest.topics import KafkaSettings
from models.settings import ModelSettings
from storage.client import connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter
from stream_app.app import create_app
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

    client = connect(clickhouse)
    migrate(client, clickhouse.retention_days)
    ensure_topics(kafka, stream.input_topics)
    classifier = load_classifier(model)
    worker_name = stream.worker_name or f"{socket.gethostname()}-{os.getpid()}"
    log.info("stream worker %s: model %s on %s", worker_name, classifier.model_version, classifier.backend)
    processor = BatchProcessor(classifier, BatchWriter(client, clickhouse), stream.run_id, worker_name)
    datadir = Path(tempfile.mkdtemp(prefix="finpulse-faust-"))
    app = create_app(stream, kafka, processor, datadir)
    try:
        faust.Worker(app, loglevel=stream.log_level, quiet=True).execute_from_commandline()
    finally:
        processor.close()
        client.close()
