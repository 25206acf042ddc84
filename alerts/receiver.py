"""A reference webhook receiver: verifies signatures and dedupes on the signed `idempotency_key`.

The key is read from the verified body, never from the unsigned `Idempotency-Key` header: a request
captured and replayed inside the timestamp window with a new header is still a duplicate.

It shows receivers what to do, backs `finpulse alerts test-webhook` checks, and serves as the real
HTTP endpoint in the tests. Lifecycle: `WebhookReceiver(secret)` -> `start()` -> `url` -> `stop()`;
`start()` may be called again after `stop()` and reuses the same port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from alerts.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def idempotency_key(self) -> str:
        """The body's signed `idempotency_key` ("" when the body is not a JSON object holding one)."""
        try:
            body = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return ""
        key = body.get("idempotency_key") if isinstance(body, dict) else None
        return key if isinstance(key, str) else ""


# (status, extra headers) for a request; None means "default behaviour"
Responder = Callable[[ReceivedRequest], tuple[int, dict[str, str]] | None]


class WebhookReceiver:
    """Threaded HTTP server on 127.0.0.1: 401 on a bad signature, 400 without a signed key, else 200
    (first time) or 200 duplicate. `secret` may be a list (current and next, during a rotation)."""

    def __init__(
        self,
        secret: str | list[str],
        port: int = 0,
        responder: Responder | None = None,
        tolerance_s: float = 300,
    ):
        self.secret = secret
        self.port = port
        self.responder = responder
        self.tolerance_s = tolerance_s
        self.requests: list[ReceivedRequest] = []
        self.accepted: dict[str, dict] = {}  # signed idempotency key -> parsed body, first delivery
        self.duplicates = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify_signature(
                    receiver.secret,
                    headers.get(TIMESTAMP_HEADER.lower(), ""),
                    body,
                    headers.get(SIGNATURE_HEADER.lower(), ""),
                    receiver.tolerance_s,
                )
                status, extra = receiver.handle(ReceivedRequest(self.path, headers, body, ok))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        ).start()

    def handle(self, request: ReceivedRequest) -> tuple[int, dict[str, str]]:
        """Record the request and decide the response."""
        with self._lock:
            self.requests.append(request)
        decided = self.responder(request) if self.responder else None
        if decided is not None:
            return decided
        if not request.signature_ok:
            return 401, {}
        if not request.idempotency_key:
            return 400, {}
        with self._lock:
            if request.idempotency_key in self.accepted:
                self.duplicates += 1
            else:
                self.accepted[request.idempotency_key] = orjson.loads(request.body)
        return 200, {}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
