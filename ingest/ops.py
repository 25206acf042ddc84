"""Operations endpoints of a worker process: `/healthz`, `/readyz` and `/metrics` on one port.

Used by the stream and alert workers (HTTP ingest serves `/metrics` from its own FastAPI app). It
lives in `ingest/`, the first stage, so that every later stage may import it.

- `/healthz` (liveness): 200 while the process serves requests.
- `/readyz` (readiness): runs every named check; 200 when all pass, else 503, with a JSON body
  `{"status": "ready" | "not ready", "checks": {name: {"ok": bool, "detail": str}}}`.
- `/metrics`: the process's Prometheus registry in the text exposition format.

Lifecycle: `OpsServer(host, port, registry, checks)` -> `start()` (a daemon thread) -> `stop()`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One readiness check's verdict."""

    ok: bool
    detail: str = ""


Check = Callable[[], CheckResult]


def process_registry() -> CollectorRegistry:
    """A fresh registry with the process collector (`process_start_time_seconds` shows restarts)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def run_checks(checks: Mapping[str, Check]) -> tuple[bool, dict[str, dict]]:
    """Run every check (an exception counts as a failure); return (all ok, JSON-ready results)."""
    results = {}
    for name, check in checks.items():
        try:
            result = check()
        except Exception as exc:  # a check must never take the endpoint down
            result = CheckResult(False, f"{type(exc).__name__}: {exc}")
        results[name] = {"ok": result.ok, "detail": result.detail}
    return all(r["ok"] for r in results.values()), results


def tcp_check(addresses: Iterable[str], timeout_s: float = 2.0) -> Check:
    """Passes when a TCP connection to any `host:port` opens (the broker listens)."""
    targets = list(addresses)

    def check() -> CheckResult:
        problems = []
        for address in targets:
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=timeout_s):
                    return CheckResult(True, f"{address} reachable")
            except (OSError, ValueError) as exc:
                problems.append(f"{address}: {exc}")
        return CheckResult(False, "; ".join(problems) or "no address configured")

    return check


def recent_progress_check(
    last_progress: Callable[[], float | None],
    max_age_s: float,
    what: str,
    clock: Callable[[], float] = time.time,
) -> Check:
    """Passes when `last_progress()` (epoch seconds) is at most `max_age_s` old."""

    def check() -> CheckResult:
        last = last_progress()
        if last is None:
            return CheckResult(False, f"no {what} yet")
        age = clock() - last
        return CheckResult(age <= max_age_s, f"last {what} {age:.0f}s ago (limit {max_age_s:.0f}s)")

    return check


class OpsServer:
    """Serves the three endpoints from a daemon thread (see module docstring)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, checks: Mapping[str, Check] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._checks = dict(checks or {})
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_check(self, name: str, check: Check) -> None:
        """Register one more readiness check (e.g. once the component it watches exists)."""
        self._checks[name] = check

    def start(self) -> None:
        """Bind the port (port 0: any free one, see `self.port`) and serve in a daemon thread."""
        self._server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="finpulse-ops", daemon=True)
        self._thread.start()
        log.info("ops endpoints on http://%s:%d (/healthz /readyz /metrics)", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(server._registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._reply(200, orjson.dumps({"status": "ok"}))
                elif path == "/readyz":
                    ok, results = run_checks(server._checks)
                    body = {"status": "ready" if ok else "not ready", "checks": results}
                    self._reply(200 if ok else 503, orjson.dumps(body))
                else:
                    self._reply(404, orjson.dumps({"error": "not found"}))

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Scrapes every few seconds would flood the log."""

        return Handler
