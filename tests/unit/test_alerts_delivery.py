"""Webhook delivery against a real local HTTP receiver, and Grafana annotations against a fake Grafana."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from alerts.delivery import (
    Attempt,
    RetryPolicy,
    WebhookSender,
    retry_after_seconds,
    signature_header,
    verify_signature,
)
from alerts.grafana import GrafanaAnnotator, annotation_tag, annotation_text
from alerts.receiver import ReceivedRequest, WebhookReceiver
from alerts.settings import AlertSettings, WebhookEndpoint

SECRET = "s3cret"
BODY = b'{"alert_id":"abc","idempotency_key":"abc:firing","state":"firing"}'


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET)
    server.start()
    yield server
    server.stop()


def _send(
    receiver: WebhookReceiver, policy: RetryPolicy, timeout_s: float = 2.0, **secrets: str
) -> tuple[str, list, list]:
    attempts: list[Attempt] = []
    pauses: list[float] = []
    endpoint = WebhookEndpoint(url=receiver.url, timeout_s=timeout_s, **{"secret": SECRET, **secrets})
    with httpx.Client() as http:
        outcome = WebhookSender(http, policy, sleep=pauses.append, rng=lambda: 1.0).send(
            endpoint, BODY, "abc:firing", on_attempt=attempts.append
        )
    return outcome, attempts, pauses


def test_signature_verifies_at_the_receiver(receiver: WebhookReceiver) -> None:
    outcome, attempts, _ = _send(receiver, RetryPolicy())
    assert outcome == "delivered" and [a.status_code for a in attempts] == [200]
    (request,) = receiver.requests
    assert request.signature_ok and request.idempotency_key == "abc:firing"
    ts, sig = request.headers["x-finpulse-timestamp"], request.headers["x-finpulse-signature"]
    assert verify_signature(SECRET, ts, BODY, sig)
    assert not verify_signature(SECRET, ts, BODY + b" ", sig)
    assert not verify_signature("other", ts, BODY, sig)
    old = str(int(ts) - 3600)
    assert not verify_signature(SECRET, old, BODY, signature_header([SECRET], old, BODY))
    assert sig.startswith("v1=")
    assert not verify_signature(SECRET, ts, BODY, sig.removeprefix("v1="))  # the scheme is required


def test_wrong_secret_is_refused_and_not_retried(receiver: WebhookReceiver) -> None:
    receiver.secret = "rotated"
    outcome, attempts, pauses = _send(receiver, RetryPolicy(max_attempts=5))
    assert outcome == "failed" and [a.status_code for a in attempts] == [401] and pauses == []


def test_4xx_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.responder = lambda request: (422, {})
    outcome, attempts, _ = _send(receiver, RetryPolicy(max_attempts=5))
    assert outcome == "failed" and len(receiver.requests) == 1 and attempts[0].outcome == "failed"


def test_5xx_retried_with_exponential_backoff(receiver: WebhookReceiver) -> None:
    receiver.responder = lambda request: (503, {}) if len(receiver.requests) < 3 else None
    outcome, attempts, pauses = _send(receiver, RetryPolicy(max_attempts=5, backoff_s=0.5, backoff_max_s=1.5))
    assert outcome == "delivered"
    assert [a.outcome for a in attempts] == ["retry", "retry", "delivered"]
    assert pauses == [0.5, 1.0]  # rng=1.0: the top of the 50–100 % jitter band
    assert len(receiver.accepted) == 1


def test_429_retry_after_is_honoured(receiver: WebhookReceiver) -> None:
    receiver.responder = lambda request: (429, {"Retry-After": "7"}) if len(receiver.requests) == 1 else None
    outcome, attempts, pauses = _send(receiver, RetryPolicy(max_attempts=3, backoff_s=0.1))
    assert outcome == "delivered" and [a.status_code for a in attempts] == [429, 200] and pauses == [7.0]


def test_timeouts_and_connection_errors_are_retried(receiver: WebhookReceiver) -> None:
    receiver.responder = lambda request: time.sleep(0.5) if len(receiver.requests) == 1 else None
    outcome, attempts, _ = _send(receiver, RetryPolicy(max_attempts=3), timeout_s=0.2)
    assert outcome == "delivered" and attempts[0].status_code == 0 and "Timeout" in attempts[0].error
    receiver.stop()
    outcome, attempts, pauses = _send(receiver, RetryPolicy(max_attempts=3, backoff_s=0.01))
    assert (
        outcome == "retry" and len(attempts) == 3 and len(pauses) == 2 and "ConnectError" in attempts[0].error
    )


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_webhooks_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FINPULSE_ALERTS_WEBHOOKS", '[{"url": "https://hooks.example/x?token=1", "secret": "hunter2"}]'
    )
    (endpoint,) = AlertSettings().webhooks
    assert endpoint.secret.get_secret_value() == "hunter2" and endpoint.name == "https://hooks.example/x"
    assert "hunter2" not in repr(endpoint)


class FakeGrafana:
    """The two Grafana endpoints the annotator uses: GET and POST /api/annotations."""

    def __init__(self) -> None:
        self.annotations: list[dict] = []
        self.auth: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                fake.auth.append(self.headers.get("Authorization", ""))
                path, _, query = self.path.partition("?")
                if path != "/api/annotations":
                    return self._reply(404, {"message": "not found"})
                tags = [p.split("=", 1)[1] for p in query.split("&") if p.startswith("tags=")]
                found = [a for a in fake.annotations if all(t in a["tags"] for t in tags)]
                self._reply(200, found)

            def do_POST(self) -> None:  # noqa: N802
                fake.auth.append(self.headers.get("Authorization", ""))
                if self.path != "/api/annotations":
                    return self._reply(404, {"message": "not found"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.annotations.append({**body, "id": len(fake.annotations) + 1})
                self._reply(200, {"id": len(fake.annotations), "message": "Annotation added"})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_grafana_annotation_once_per_event() -> None:
    fake = FakeGrafana()
    try:
        payload = {
            "alert_id": "abc", "state": "firing", "severity": "critical", "rule": "r", "key_kind": "topic",
            "key": "earnings", "window": {"start_ms": 1_700_000_000_000, "end_ms": 1_700_000_060_000},
            "metrics": {"volume": 40, "negative": 30, "negative_share": 0.75, "baseline": 0.2,
                        "z_score": 8.0},
            "dashboard_url": "http://grafana/d/x",
        }  # fmt: skip
        annotator = GrafanaAnnotator(fake.url, "tok", timeout_s=2)
        assert annotator.annotate(payload) is True
        assert annotator.annotate(payload) is False  # found by its tag: not added twice
        (note,) = fake.annotations
        assert note["time"] == 1_700_000_000_000 and note["timeEnd"] == 1_700_000_060_000
        assert annotation_tag("abc", "firing") in note["tags"] and "topic:earnings" in note["tags"]
        assert "FIRING critical" in note["text"] and "75% vs 20%" in note["text"]
        assert set(fake.auth) == {"Bearer tok"}
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_annotation_text_escapes_hostile_keys_and_links() -> None:
    text = annotation_text('FIRING topic=<img src=x onerror="alert(1)">', 'http://g/d?a=1&b="><script>')
    assert "<img" not in text and "<script>" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert text.endswith('<a href="http://g/d?a=1&amp;b=&quot;&gt;&lt;script&gt;">dashboard</a>')


def test_receiver_dedupes_by_idempotency_key(receiver: WebhookReceiver) -> None:
    for _ in range(2):
        _send(receiver, RetryPolicy())
    assert list(receiver.accepted) == ["abc:firing"] and receiver.duplicates == 1
    assert isinstance(receiver.requests[0], ReceivedRequest)


def test_cli_test_webhook_sends_a_signed_sample(receiver: WebhookReceiver) -> None:
    from typer.testing import CliRunner

    from alerts.cli import app

    result = CliRunner().invoke(app, ["test-webhook", receiver.url, "--secret", SECRET])
    assert result.exit_code == 0 and "HTTP 200" in result.output
    (body,) = receiver.accepted.values()
    assert body["rule"] == "test-webhook" and body["state"] == "firing"
    refused = CliRunner().invoke(app, ["test-webhook", receiver.url, "--secret", "wrong"])
    assert refused.exit_code == 1 and "HTTP 401" in refused.output


def test_replayed_capture_with_a_new_idempotency_header_is_a_duplicate(receiver: WebhookReceiver) -> None:
    _send(receiver, RetryPolicy())
    (captured,) = receiver.requests
    replayed = {k: v for k, v in captured.headers.items() if k not in ("host", "content-length")}
    replayed["idempotency-key"] = "attacker-chosen"
    response = httpx.post(receiver.url, content=captured.body, headers=replayed)
    assert response.status_code == 200  # the signature is still valid inside the window...
    assert list(receiver.accepted) == ["abc:firing"] and receiver.duplicates == 1  # ...but it is not new


def test_rotation_signs_with_both_secrets_and_receivers_accept_either(receiver: WebhookReceiver) -> None:
    receiver.secret = "new-secret"  # the receiver switched first
    outcome, _, _ = _send(receiver, RetryPolicy(max_attempts=1), secret="new-secret", previous_secret=SECRET)
    assert outcome == "delivered"
    receiver.secret = SECRET  # a receiver still on the old secret
    outcome, _, _ = _send(receiver, RetryPolicy(max_attempts=1), secret="new-secret", previous_secret=SECRET)
    assert outcome == "delivered"
    header = receiver.requests[-1].headers["x-finpulse-signature"]
    assert header.count("v1=") == 2
    ts = receiver.requests[-1].headers["x-finpulse-timestamp"]
    assert verify_signature(["other", SECRET], ts, BODY, header)  # a receiver holding two secrets
    assert not verify_signature(["other", "third"], ts, BODY, header)
