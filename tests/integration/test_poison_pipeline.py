"""Hostile input and faults on real components (Tansu, ClickHouse 18.16, `finpulse stream` workers):
poison mid-stream, broker outages during ingest and streaming, a rebalance with one worker killed.

A broker outage is the broker process stopped (SIGSTOP) and resumed (SIGCONT): connections hang as
on a network partition, and the memory-backed broker keeps its topics and offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator

import httpx
import orjson
from kafka import KafkaConsumer
from pydantic import SecretStr

from alerts.settings import AlertSettings
from alerts.worker import AlertWorker
from devstack.services import TansuBroker, start_stream_worker, terminate
from ingest.http_api import create_app
from ingest.publisher import DocumentPublisher, ensure_topics
from ingest.settings import IngestSettings
from models.base import Prediction
from storage.queries import document_count
from storage.writer import BatchWriter, ClassifiedBatch
from stream_app.processor import REASON_HEADER
from tests.integration.pipeline import kafka_settings, produce, synthetic_documents, wait_until, worker_env

RULES_YAML = """
bucket_s: 60
rules:
  - {name: ticker-spike, key_kind: ticker, min_volume: 2, min_negative: 1, min_lift: 0.1, z_enter: 2,
     z_exit: 1, exit_buckets: 2, cooldown_buckets: 2, warmup_buckets: 2, halflife_buckets: 20}
"""


def _messages(kafka, topic: str, timeout_ms: int = 3000) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest",
        consumer_timeout_ms=timeout_ms, group_id=None,
    )  # fmt: skip
    try:
        return list(consumer)
    finally:
        consumer.close()


def _distinct(client) -> int:
    return document_count(client, "live")[1]


@contextlib.contextmanager
def _paused(broker: TansuBroker) -> Iterator[None]:
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.pid, signal.SIGCONT)


def _poison(template: dict) -> list[bytes]:
    """Messages that must be dead-lettered: odd tickers, a date ClickHouse cannot hold, garbage."""
    odd = [
        {**template, "doc_id": "odd-sep", "tickers": ["A\x1fB"]},
        {**template, "doc_id": "odd-long", "tickers": ["X" * 40]},
        {**template, "doc_id": "odd-many", "tickers": [f"T{i}" for i in range(100)]},
        {**template, "doc_id": "y2200", "published_at": "2200-01-01T00:00:00Z"},
    ]
    return [orjson.dumps(r) for r in odd] + [b"\xff\xfe garbage", b'{"doc_id": "cut']


def test_poison_mid_stream_is_dead_lettered_and_every_valid_document_stored_once(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(200)
    template = orjson.loads(docs[0].to_json())
    produce(kafka, docs[:100], malformed=_poison(template))
    produce(kafka, docs[100:])
    worker = start_stream_worker(worker_env(kafka, clickhouse_settings, tiny_model_dir), tmp_path / "w.log")
    try:
        wait_until(lambda: _distinct(ch_client) >= 200, 180, "200 documents stored")
        wait_until(lambda: len(_messages(kafka, kafka.dlq_topic)) >= 6, 30, "6 dead letters")
        time.sleep(2)
        assert worker.poll() is None, "the worker exited (a restart loop on data)"
        assert document_count(ch_client, "live") == (200, 200)
        reasons = {
            m.key.decode(): dict(m.headers)[REASON_HEADER].decode() for m in _messages(kafka, kafka.dlq_topic)
        }
        assert len(reasons) == 6
        kinds = sorted(r.split(": ")[1 if r.startswith("invalid") else 0] for r in reasons.values())
        assert kinds == ["not JSON", "not JSON", "published_at", "tickers", "tickers", "tickers"]
        assert ch_client.query(f"SELECT count() FROM {ch_client.database}.dead_letters FINAL") == [(6,)]
    finally:
        terminate(worker, grace_s=15)


def test_alert_worker_keeps_running_across_restarts_after_odd_keys(
    ch_client, clickhouse_settings, tmp_path
) -> None:
    # Rows with odd tickers as an older build stored them (today's Document refuses them).
    docs = synthetic_documents(40)
    odd = ("A\x1fB", "ticker\x1fX", '["x"]', "A")
    docs = [d.model_copy(update={"tickers": (odd[i % len(odd)],)}) for i, d in enumerate(docs)]
    preds = [Prediction("markets", 0.9, "negative", 0.8, 0.1, 0.1) for _ in docs]
    BatchWriter(ch_client, clickhouse_settings).write(ClassifiedBatch("live", docs, preds, "m1"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML)
    settings = AlertSettings(rules_path=rules, grace_s=0, lookback_s=7200, samples=0)
    for _restart in range(3):
        worker = AlertWorker(settings, ch_client)
        worker.setup()
        assert worker.poll() and worker.poll(), worker.health.last_error
        assert worker.health.consecutive_failures == 0 and worker.health.failed_keys == {}
        worker.close()
    keys = {orjson.loads(name)[2] for name in worker.state.keys}
    assert keys == set(odd) and worker.state.cutoff is not None


def test_broker_outage_during_ingest_is_a_fast_503_then_recovers(broker) -> None:
    kafka = kafka_settings(broker)
    ensure_topics(kafka)
    publisher = DocumentPublisher(kafka)
    settings = IngestSettings(api_token=SecretStr("t"), publish_timeout_s=1, retry_after_s=1)

    def publish(docs) -> None:
        publisher.publish(docs)
        publisher.flush(settings.publish_timeout_s)

    app = create_app(settings, publish, publisher.check)
    auth = {"Authorization": "Bearer t"}
    body = [
        {"id": f"o{i}", "title": f"Outage story {i}", "published_at": "2026-11-02T13:00:00Z"}
        for i in range(5)
    ]

    async def scenario() -> dict:
        seen = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as http:
            with _paused(broker):
                started = time.monotonic()
                seen["down"] = await http.post("/v1/docs", json=body, headers=auth)
                seen["down_s"] = time.monotonic() - started
                seen["health"] = await http.get("/healthz")
                seen["ready_down"] = await http.get("/readyz")
            await asyncio.sleep(1.2)  # Retry-After
            seen["ready_up"] = await http.get("/readyz")
            seen["up"] = await http.post("/v1/docs", json=body, headers=auth)
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        publisher.close()
    assert seen["down"].status_code == 503 and seen["down"].headers["Retry-After"] == "1"
    assert seen["down_s"] < 3 and seen["health"].status_code == 200
    assert seen["ready_down"].status_code == 503 and not seen["ready_down"].json()["checks"]["broker"]["ok"]
    assert seen["ready_up"].status_code == 200 and seen["up"].status_code == 202
    # at-least-once: the 503'd copies may still arrive; the retry makes every document present
    keys = [m.key for m in _messages(kafka, kafka.raw_topic)]
    assert set(keys) == {d.encode() for d in seen["up"].json()["doc_ids"]} and 5 <= len(keys) <= 10


def test_broker_outage_during_streaming_loses_and_duplicates_nothing(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(600)
    produce(kafka, docs[:300])
    env = worker_env(kafka, clickhouse_settings, tiny_model_dir, FINPULSE_STREAM_MAX_BATCH="32")
    worker = start_stream_worker(env, tmp_path / "w.log")
    try:
        wait_until(lambda: _distinct(ch_client) >= 100, 180, "first batches stored")
        with _paused(broker):
            time.sleep(8)  # four session timeouts
        produce(kafka, docs[300:])
        wait_until(lambda: _distinct(ch_client) >= 600, 180, "all documents after the outage")
        time.sleep(2)
        assert worker.poll() is None, "the worker died with the broker"
        assert document_count(ch_client, "live") == (600, 600)
    finally:
        terminate(worker, grace_s=15)


def test_rebalance_with_one_of_two_workers_killed_keeps_exact_counts(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(800)
    produce(kafka, docs)
    env = worker_env(kafka, clickhouse_settings, tiny_model_dir, FINPULSE_STREAM_MAX_BATCH="16")
    first = start_stream_worker({**env, "FINPULSE_STREAM_WORKER_NAME": "w1"}, tmp_path / "w1.log")
    second = start_stream_worker({**env, "FINPULSE_STREAM_WORKER_NAME": "w2"}, tmp_path / "w2.log")
    try:
        workers = f"SELECT uniqExact(worker) FROM {ch_client.database}.pipeline_batches"
        wait_until(lambda: ch_client.query(workers) == [(2,)], 180, "both workers storing")
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert _distinct(ch_client) < len(docs), "the kill came too late to test anything"
        wait_until(lambda: _distinct(ch_client) >= len(docs), 180, "the survivor finishing every partition")
        time.sleep(2)
        assert document_count(ch_client, "live") == (800, 800)
        (volume,) = ch_client.query(
            f"SELECT uniqExactMerge(documents) FROM {ch_client.database}.sentiment_1m "
            "WHERE run_id = 'live' AND key_kind = 'market'"
        )[0]
        assert volume == 800 and second.poll() is None
    finally:
        terminate(first)
        terminate(second, grace_s=15)
