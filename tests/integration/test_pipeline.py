"""End to end on real components: ingest -> Tansu -> Faust worker -> model -> ClickHouse 18.16."""

from __future__ import annotations

import signal
import time

from kafka import KafkaConsumer

from devstack.services import start_stream_worker, terminate
from storage.client import connect
from storage.queries import document_count
from stream_app.processor import REASON_HEADER
from tests.integration.pipeline import (
    kafka_settings,
    produce,
    synthetic_documents,
    wait_until,
    worker_env,
)

MALFORMED = [b"{not json", b'{"schema_version": 1, "doc_id": "x"}', b"[1, 2, 3]"]


def _stored(client, run_id: str = "live") -> int:
    return document_count(client, run_id)[1]


def _dead_letters(kafka, expected: int) -> list:
    consumer = KafkaConsumer(
        kafka.dlq_topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest",
        consumer_timeout_ms=3000, group_id=None,
    )  # fmt: skip
    try:
        return [m for _, m in zip(range(expected + 5), consumer, strict=False)]
    finally:
        consumer.close()


def test_thousand_documents_stored_exactly_once_and_bad_input_to_dlq(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(1_200)
    produce(kafka, docs, malformed=MALFORMED)
    worker = start_stream_worker(
        worker_env(kafka, clickhouse_settings, tiny_model_dir), tmp_path / "worker.log"
    )
    try:
        wait_until(lambda: _stored(ch_client) >= len(docs), 180, "1,200 documents stored")
        time.sleep(2)  # anything extra would arrive now
        rows, distinct = document_count(ch_client, "live")
        assert (rows, distinct) == (1_200, 1_200)
        per_doc = ch_client.query(
            f"SELECT count() AS n FROM {ch_client.database}.classifications WHERE run_id = 'live' "
            "GROUP BY doc_id HAVING n > 1"
        )
        assert per_doc == [], "some documents were written more than once before merging"
        labelled = ch_client.query(
            f"SELECT countIf(topic != '' AND sentiment IN ('negative', 'neutral', 'positive')) "
            f"FROM {ch_client.database}.classifications FINAL"
        )
        assert labelled == [(1_200,)]
        assert {d.doc_id for d in docs} == {
            r[0] for r in ch_client.query(f"SELECT doc_id FROM {ch_client.database}.classifications FINAL")
        }
        wait_until(lambda: len(_dead_letters(kafka, 3)) >= 3, 30, "3 dead letters")
        letters = _dead_letters(kafka, 3)
        reasons = sorted(dict(m.headers)[REASON_HEADER].decode() for m in letters)
        assert len(letters) == 3
        assert any("not JSON" in r for r in reasons) and any("invalid document" in r for r in reasons)
        assert ch_client.query(f"SELECT count() FROM {ch_client.database}.dead_letters FINAL") == [(3,)]
    finally:
        terminate(worker, grace_s=15)


def test_worker_killed_mid_run_loses_and_duplicates_nothing(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(1_500)
    produce(kafka, docs)
    env = worker_env(kafka, clickhouse_settings, tiny_model_dir, FINPULSE_STREAM_MAX_BATCH="32")
    worker = start_stream_worker(env, tmp_path / "worker.log")
    try:
        wait_until(lambda: _stored(ch_client) >= 200, 120, "first batches stored")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        partial = _stored(ch_client)
        assert partial < len(docs), "the kill came too late to test anything"
        worker = start_stream_worker(env, tmp_path / "worker.log")
        wait_until(lambda: _stored(ch_client) >= len(docs), 180, "all documents after restart")
        time.sleep(2)
        assert document_count(ch_client, "live") == (1_500, 1_500)
        (volume,) = ch_client.query(
            f"SELECT uniqExactMerge(documents) FROM {ch_client.database}.sentiment_1m "
            "WHERE run_id = 'live' AND key_kind = 'market'"
        )[0]
        assert volume == 1_500
    finally:
        terminate(worker, grace_s=15)


def test_clickhouse_outage_retried_then_worker_stops_without_ack_and_recovers(
    broker, clickhouse_server, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    first, second = synthetic_documents(600)[:300], synthetic_documents(600)[300:]
    produce(kafka, first)
    env = worker_env(
        kafka, clickhouse_settings, tiny_model_dir,
        FINPULSE_CLICKHOUSE_INSERT_ATTEMPTS="4", FINPULSE_CLICKHOUSE_INSERT_BACKOFF_S="0.5",
    )  # fmt: skip
    worker = start_stream_worker(env, tmp_path / "worker.log")
    try:
        wait_until(lambda: _stored(ch_client) >= 300, 120, "first half stored")
        clickhouse_server.stop()
        produce(kafka, second)
        # Retries (0.5 + 1 + 2 s of backoff) run out while ClickHouse is down: the worker must exit
        # with its storage code instead of acknowledging the batch.
        worker.wait(timeout=90)
        assert worker.returncode == 75
        clickhouse_server.start()
        client = connect(clickhouse_settings)
        worker = start_stream_worker(env, tmp_path / "worker.log")
        wait_until(lambda: _stored(client) >= 600, 120, "all documents after the outage")
        time.sleep(2)
        assert document_count(client, "live") == (600, 600)
        client.close()
    finally:
        terminate(worker, grace_s=15)
        if not clickhouse_server.running:
            clickhouse_server.start()
