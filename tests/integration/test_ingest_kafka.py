"""Ingest sources publishing to a real Tansu broker: keys, timestamps and values on the wire."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from pydantic import SecretStr

from ingest.cli import publish_file
from ingest.http_api import create_app
from ingest.publisher import DocumentPublisher, ensure_topics
from ingest.schema import RUN_ID_HEADER, decode_document
from ingest.settings import IngestSettings
from tests.integration.pipeline import kafka_settings, synthetic_documents


def _consume(kafka, expected: int) -> list:
    consumer = KafkaConsumer(
        kafka.raw_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        group_id=None,
    )
    try:
        return [m for _, m in zip(range(expected + 10), consumer, strict=False)]
    finally:
        consumer.close()


def test_file_source_publishes_valid_records_keyed_by_doc_id(broker, tmp_path: Path) -> None:
    kafka = kafka_settings(broker)
    feed = Path(str(resources.files("ingest") / "samples" / "headlines.csv"))
    sent, problems = publish_file(feed, "csv", "news", kafka, show_progress=False)
    assert problems == [] and sent > 20
    messages = _consume(kafka, sent)
    assert len(messages) == sent
    for message in messages:
        doc = decode_document(message.value)
        assert message.key == doc.doc_id.encode()
        assert message.timestamp == int(doc.published_at.timestamp() * 1000)


def test_http_endpoint_publishes_to_kafka(broker) -> None:
    kafka = kafka_settings(broker)
    ensure_topics(kafka)
    publisher = DocumentPublisher(kafka)

    def publish(docs) -> None:
        publisher.publish(docs)
        publisher.flush()

    app = create_app(IngestSettings(api_token=SecretStr("t")), publish)
    body = [
        {"id": "a1", "title": "$NVDA jumps on record sales", "published_at": "2026-11-02T13:00:00Z"},
        {"id": "a2", "text": "ugh, another guidance cut from Intel", "kind": "social", "source": "social"},
    ]
    response = TestClient(app).post("/v1/docs", json=body, headers={"Authorization": "Bearer t"})
    publisher.close()
    assert response.status_code == 202
    messages = _consume(kafka, 2)
    docs = sorted((decode_document(m.value) for m in messages), key=lambda d: d.source)
    assert [d.source for d in docs] == ["http", "social"]
    assert docs[0].tickers == ("NVDA",) and docs[1].kind == "social"


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_both_producer_clients_put_the_same_record_on_the_wire(broker, client: str) -> None:
    kafka = kafka_settings(broker)
    ensure_topics(kafka)
    docs = synthetic_documents(50)
    publisher = DocumentPublisher(kafka, client=client)
    publisher.publish(docs, headers=[(RUN_ID_HEADER, b"r1")])
    publisher.flush()
    publisher.close()
    messages = _consume(kafka, len(docs))
    by_key = {m.key: m for m in messages}
    assert len(messages) == len(docs) and len(by_key) == len(docs)
    for doc in docs:
        message = by_key[doc.doc_id.encode()]
        assert decode_document(message.value) == decode_document(doc.to_json())
        assert message.timestamp == int(doc.published_at.timestamp() * 1000)
        assert [(k, bytes(v)) for k, v in message.headers] == [(RUN_ID_HEADER, b"r1")]
