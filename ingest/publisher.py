"""Kafka side of ingest: topic creation and a Document publisher keyed by doc_id.

Lifecycle: `DocumentPublisher(settings)` -> `publish(docs)` many times -> `flush()` -> `close()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from ingest.schema import Document
from ingest.settings import KafkaSettings


def ensure_topics(settings: KafkaSettings, extra: Iterable[str] = ()) -> None:
    """Create the raw and DLQ topics (and any extra ones) if they do not exist."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="finpulse-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [settings.raw_topic, settings.dlq_topic, *extra]
        missing = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=settings.replication_factor)
            for name in dict.fromkeys(wanted)
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(missing)
    finally:
        admin.close()


class DocumentPublisher:
    """Publishes Documents to a topic as JSON, keyed by doc_id so a document keeps its partition."""

    def __init__(self, settings: KafkaSettings, topic: str | None = None) -> None:
        from kafka import KafkaProducer

        self.topic = topic or settings.raw_topic
        self.sent = 0
        self._producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            linger_ms=settings.producer_linger_ms,
            batch_size=settings.producer_batch_bytes,
            compression_type=settings.compression,
            client_id="finpulse-ingest",
        )

    def publish(self, docs: Iterable[Document], headers: list[tuple[str, bytes]] | None = None) -> int:
        """Queue documents for sending; returns how many were queued."""
        count = 0
        for doc in docs:
            self._producer.send(
                self.topic,
                key=doc.doc_id.encode(),
                value=doc.to_json(),
                timestamp_ms=int(doc.published_at.timestamp() * 1000),
                headers=headers,
            )
            count += 1
        self.sent += count
        return count

    def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (used to exercise the dead-letter path)."""
        self._producer.send(self.topic, key=key, value=value)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Block until every queued message is acknowledged by the broker."""
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()
