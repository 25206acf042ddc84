"""Helpers for pipeline tests: run `finpulse stream` as a real subprocess, produce documents."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.services import TansuBroker, settings_env
from ingest.publisher import DocumentPublisher, ensure_topics
from ingest.records import to_document
from ingest.schema import Document
from ingest.topics import KafkaSettings
from storage.settings import ClickHouseSettings

_PHRASES = (
    "{c} shares plunge after profit warning",
    "{c} beats quarterly revenue estimates",
    "{c} to report results next week",
    "Regulators open probe into {c} accounting",
    "{c} announces $2bn buyback as margins improve",
    "Analysts downgrade {c} on weak demand",
)
_COMPANIES = ("Apple", "Tesla", "Microsoft", "Nvidia", "Amazon", "JPMorgan", "Exxon", "Walmart")


def kafka_settings(broker: TansuBroker) -> KafkaSettings:
    """Per-test topics on the session broker, with Tansu-friendly group timeouts."""
    suffix = uuid.uuid4().hex[:8]
    return broker.kafka_settings(raw_topic=f"raw-{suffix}", dlq_topic=f"dlq-{suffix}", partitions=4)


def synthetic_documents(count: int, start: datetime | None = None) -> list[Document]:
    """`count` distinct documents spread one every 5 s of event time."""
    start = start or datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    docs = []
    for i in range(count):
        company = _COMPANIES[i % len(_COMPANIES)]
        title = _PHRASES[(i // len(_COMPANIES)) % len(_PHRASES)].format(c=company) + f" (item {i})"
        docs.append(
            to_document(
                {
                    "id": f"n{i}",
                    "title": title,
                    "published_at": (start + timedelta(seconds=5 * i)).isoformat(),
                },
                default_source="testwire",
            )
        )
    return docs


def produce(kafka: KafkaSettings, docs: list[Document], malformed: list[bytes] = ()) -> None:
    ensure_topics(kafka)
    publisher = DocumentPublisher(kafka)
    try:
        publisher.publish(docs)
        for raw in malformed:
            publisher.publish_raw(raw)
        publisher.flush()
    finally:
        publisher.close()


def worker_env(
    kafka: KafkaSettings, clickhouse: ClickHouseSettings, model_dir: Path, **extra: str
) -> dict[str, str]:
    """The FINPULSE_* variables of a test worker (for `start_stream_worker`)."""
    return {
        **settings_env("FINPULSE_KAFKA_", kafka),
        "FINPULSE_CLICKHOUSE_MODE": "server",
        "FINPULSE_CLICKHOUSE_PORT": str(clickhouse.port),
        "FINPULSE_CLICKHOUSE_DATABASE": clickhouse.database,
        "FINPULSE_MODEL_DIR": str(model_dir),
        "FINPULSE_MODEL_BACKEND": "onnx" if (model_dir / "model.onnx").exists() else "torch",
        "FINPULSE_STREAM_APP_ID": f"finpulse-test-{kafka.raw_topic}",
        "FINPULSE_STREAM_MAX_BATCH": "64",
        "FINPULSE_STREAM_MAX_WAIT_S": "0.2",
        **extra,
    }


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
