"""Ops endpoints (/healthz, /readyz, /metrics) and the metric objects, on a real local HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from alerts.delivery import Attempt
from alerts.metrics import AlertMetrics
from ingest.http_api import create_app
from ingest.ops import CheckResult, OpsServer, process_registry, recent_progress_check, tcp_check
from ingest.schema import Document
from ingest.settings import IngestSettings
from storage.writer import DeadLetter
from stream_app.metrics import StreamMetrics, reason_class
from stream_app.processor import PreparedBatch


@pytest.fixture
def server():
    registry = process_registry()
    metrics = StreamMetrics(registry)
    ops = OpsServer("127.0.0.1", 0, registry, {"always": lambda: CheckResult(True, "fine")})
    ops.start()
    yield ops, metrics
    ops.stop()


def _get(ops: OpsServer, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{ops.port}{path}", timeout=5)


def test_liveness_readiness_and_metrics(server) -> None:
    ops, metrics = server
    assert _get(ops, "/healthz").json() == {"status": "ok"}
    ready = _get(ops, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"always": {"ok": True, "detail": "fine"}}}
    metrics.received.inc(3)
    text = _get(ops, "/metrics").text
    assert "finpulse_stream_documents_received_total 3.0" in text
    assert "process_start_time_seconds" in text
    assert _get(ops, "/nope").status_code == 404


def test_a_failing_or_raising_check_makes_the_worker_not_ready(server) -> None:
    ops, _ = server
    ops.add_check("down", lambda: CheckResult(False, "refused"))
    ops.add_check("broken", lambda: 1 / 0)
    ready = _get(ops, "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["down"] == {"ok": False, "detail": "refused"}
    assert body["checks"]["broken"]["detail"].startswith("ZeroDivisionError")


def test_tcp_check_sees_a_listening_port_and_a_closed_one(server) -> None:
    ops, _ = server
    assert tcp_check([f"127.0.0.1:{ops.port}"])().ok
    refused = tcp_check(["127.0.0.1:1", "nonsense"], timeout_s=0.5)()
    assert not refused.ok and "127.0.0.1:1" in refused.detail


def test_progress_check_ages_out() -> None:
    clock = [1000.0]
    check = recent_progress_check(lambda: 900.0, 120, "batch", clock=lambda: clock[0])
    assert check().ok
    clock[0] = 1021.0
    assert not check().ok
    assert not recent_progress_check(lambda: None, 120, "poll")().ok


def test_stream_metrics_batch_lag_and_progress() -> None:
    registry = process_registry()
    metrics = StreamMetrics(registry)
    doc = Document(
        doc_id="d1", source="wire", published_at=datetime.now(UTC) - timedelta(seconds=2), title="t"
    )
    prepared = PreparedBatch(by_run={"live": [doc], "replay-1": [doc]})
    letters = [DeadLetter("raw", 0, 5, "not JSON: bad", b"{"), DeadLetter("raw", 0, 6, "weird", b"")]
    metrics.observe_batch(prepared, letters, infer_s=0.05, insert_s=0.01)
    value = registry.get_sample_value
    assert value("finpulse_stream_documents_stored_total") == 2
    assert value("finpulse_stream_dead_letters_total", {"reason": "not_json"}) == 1
    assert value("finpulse_stream_dead_letters_total", {"reason": "other"}) == 1
    assert value("finpulse_stream_batch_size_sum") == 4
    assert value("finpulse_stream_publish_to_stored_seconds_count") == 1  # live documents only
    metrics.set_lag({("raw", 0): 7, ("raw", 1): 0})
    assert value("finpulse_stream_consumer_lag", {"topic": "raw", "partition": "0"}) == 7
    last = metrics.last_progress()
    assert last == value("finpulse_stream_last_batch_timestamp_seconds")
    metrics.set_lag({("raw", 1): 0})  # partition 0 revoked
    assert value("finpulse_stream_consumer_lag", {"topic": "raw", "partition": "0"}) is None
    assert metrics.last_progress() > last  # nothing waits: idle is progress


def test_reason_classes_are_bounded() -> None:
    assert reason_class("empty message value") == "empty"
    assert reason_class("expected a JSON object, got list") == "not_object"
    assert reason_class("invalid document: title too long") == "invalid_document"
    assert reason_class("anything else " * 20) == "other"


def test_alert_metrics_poll_health_and_deliveries() -> None:
    registry = process_registry()
    metrics = AlertMetrics(registry, ["http://hook"])
    value = registry.get_sample_value
    assert (
        value("finpulse_alerts_delivery_attempts_total", {"endpoint": "http://hook", "outcome": "failed"})
        == 0
    )
    assert metrics.last_successful_poll() is None
    assert value("finpulse_alerts_last_successful_poll_timestamp_seconds") > 0  # the start time
    metrics.poll_failed()
    metrics.poll_failed()
    assert value("finpulse_alerts_consecutive_poll_failures") == 2
    metrics.poll_succeeded(0.2, [], None)
    assert value("finpulse_alerts_consecutive_poll_failures") == 0
    assert value("finpulse_alerts_polls_total", {"outcome": "failed"}) == 2
    assert metrics.last_successful_poll() == value("finpulse_alerts_last_successful_poll_timestamp_seconds")
    metrics.delivery_attempt(Attempt("http://hook", 1, datetime.now(UTC), 503, "retry", "busy"))
    assert (
        value("finpulse_alerts_delivery_attempts_total", {"endpoint": "http://hook", "outcome": "retry"}) == 1
    )
    assert value("finpulse_alerts_webhook_responses_total", {"endpoint": "http://hook", "status": "503"}) == 1


def test_ingest_serves_its_metrics() -> None:
    client = TestClient(create_app(IngestSettings(allow_anonymous=True), lambda docs: None))
    accepted = client.post("/v1/docs", json={"id": "1", "title": "Acme beats estimates", "published_at":
                                             "2026-11-02T13:00:00Z"})  # fmt: skip
    assert accepted.status_code == 202
    assert client.post("/v1/docs", json=[{"title": ""}]).status_code == 400
    text = client.get("/metrics").text
    assert "finpulse_ingest_documents_accepted_total 1.0" in text
    assert 'finpulse_ingest_requests_total{status="400"} 1.0' in text
    assert "finpulse_ingest_documents_rejected_total 1.0" in text
