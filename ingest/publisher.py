"""Kafka side of ingest: topic creation and a Document publisher keyed by doc_id.

Lifecycle: `DocumentPublisher(settings)` -> `publish(docs)` many times -> `flush()` -> `close()`.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterable
from typing import Any

from ingest.schema import Document
from ingest.topics import KafkaSettings


def ensure_topics(settings: KafkaSettings, extra: Iterable[str] = ()) -> None:
    """Create the raw and DLQ topics (and any extra ones) if they do not exist."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    timeout_ms = int(settings.admin_timeout_s * 1000)
    timeouts = {"request_timeout_ms": timeout_ms}
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python 3; 2.x gives up sooner
        timeouts["bootstrap_timeout_ms"] = timeout_ms
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="finpulse-admin", **timeouts
    )
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
    """Publishes Documents to a topic as JSON, keyed by doc_id so a document keeps its partition.

    Uses confluent-kafka (librdkafka, ~30x kafka-python's produce rate here) when it is installed,
    else kafka-python; `client` forces one ("confluent" | "kafka-python").
    """

    def __init__(self, settings: KafkaSettings, topic: str | None = None, client: str | None = None) -> None:
        self.topic = topic or settings.raw_topic
        self.sent = 0
        if client is None:
            client = "confluent" if importlib.util.find_spec("confluent_kafka") else "kafka-python"
        self.client = client
        self._producer = (
            _ConfluentProducer(settings) if client == "confluent" else _KafkaPythonProducer(settings)
        )

    def publish(self, docs: Iterable[Document], headers: list[tuple[str, bytes]] | None = None) -> int:
        """Queue documents for sending; returns how many were queued."""
        count = 0
        send = self._producer.send
        for doc in docs:
            send(
                self.topic,
                doc.doc_id.encode(),
                doc.to_json(),
                int(doc.published_at.timestamp() * 1000),
                headers,
            )
            count += 1
        self.sent += count
        return count

    def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (used to exercise the dead-letter path)."""
        self._producer.send(self.topic, key, value, None, None)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Block until every queued message is acknowledged by the broker (PublishError after `timeout_s`)."""
        self._producer.flush(timeout_s)

    def check(self, timeout_s: float = 5.0) -> str | None:
        """Ask the broker for this topic's metadata: None when it answers within `timeout_s`, else why not."""
        return self._producer.check(self.topic, timeout_s)

    def close(self) -> None:
        """Send what is still queued (best effort) and release the client."""
        self._producer.close()


class PublishError(RuntimeError):
    """The broker did not accept some messages."""


class _KafkaPythonProducer:
    def __init__(self, settings: KafkaSettings) -> None:
        from kafka import KafkaProducer

        self._producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            linger_ms=settings.producer_linger_ms,
            batch_size=settings.producer_batch_bytes,
            compression_type=settings.compression,
            client_id="finpulse-ingest",
        )

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        self._producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms, headers=headers)

    def flush(self, timeout_s: float) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            raise PublishError(f"messages still unacknowledged after {timeout_s:.0f}s") from exc

    def check(self, topic: str, timeout_s: float) -> str | None:
        return None if self._producer.bootstrap_connected() else "not connected to any broker"

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()


class _ConfluentProducer:
    def __init__(self, settings: KafkaSettings) -> None:
        from confluent_kafka import Producer

        self._errors: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": ",".join(settings.bootstrap_servers),
                "acks": "all",
                "linger.ms": settings.producer_linger_ms,
                "batch.size": settings.producer_batch_bytes,
                "compression.type": settings.compression or "none",
                "client.id": "finpulse-ingest",
                "log.connection.close": False,
            }
        )

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    timestamp=timestamp_ms or 0,
                    headers=headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # local queue full: serve deliveries, then try again
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise PublishError(f"{remaining} messages still unacknowledged after {timeout_s:.0f}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise PublishError(f"{len(errors)} messages refused by the broker, first: {errors[0]}")

    def check(self, topic: str, timeout_s: float) -> str | None:
        from confluent_kafka import KafkaException

        try:
            self._producer.list_topics(topic, timeout=timeout_s)
        except KafkaException as exc:
            return f"broker metadata request failed: {exc.args[0] if exc.args else exc}"
        return None

    def close(self) -> None:
        self._producer.flush(60.0)
        self._producer = None  # destroys the librdkafka client (its threads and connections) now
