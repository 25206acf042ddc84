"""HTTP push endpoint: `POST /v1/docs` with one document or a list, bearer-token protected.

Fails closed: without a token the app refuses to start unless `allow_anonymous` (development only)
is set. Every malformed field is a 400 naming the record and the reason. Publishing runs in a
worker thread with a deadline, so the event loop (and `/healthz`) keeps answering; when the broker
does not take the documents in time the answer is a 503 with `Retry-After`, and for the next
`retry_after_s` seconds further posts get that 503 at once instead of waiting again. `/healthz`
is liveness (no I/O); `/readyz` asks the broker. Each token (or, anonymously, each client address)
has its own token-bucket rate limit (429 with `Retry-After`). An undated document is stamped on
its first arrival, and a retry of it (same doc_id) within the last `undated_memory` stamps gets the
same stamp, so it is the same row downstream. `GET /metrics` serves Prometheus (names in
docs/operations.md).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ingest.ops import process_registry
from ingest.records import is_undated, to_document
from ingest.schema import Document, DocumentError
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Document]], None]
# Asks the broker whether it is reachable: None when it is, else the reason.
BrokerCheck = Callable[[float], str | None]


class IngestConfigError(RuntimeError):
    """The ingest settings are unsafe or inconsistent; the server must not start."""


# Text fields also take numbers (spelled out, as CSV and loose JSON sources send them).
_TEXT = {"type": ["string", "number", "null"]}
_RECORD_SCHEMA = {
    "type": "object",
    "description": "One document; field spellings as in ingest.records (id/guid, body/summary, ...).",
    "properties": {
        **{name: _TEXT for name in ("id", "source", "kind", "title", "text", "url", "lang")},
        "doc_id": {"type": ["string", "number", "null"], "maxLength": 64},
        "published_at": {"type": ["string", "number", "null"], "description": "ISO-8601 or epoch s"},
        "tickers": {
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}, {"type": "null"}]
        },
        "meta": {"type": ["object", "null"]},
    },
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "problems": {"type": "array"}},
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "required": ["accepted", "doc_ids"],
    "properties": {
        "accepted": {"type": "integer"},
        "doc_ids": {"type": "array", "items": {"type": "string"}},
    },
}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


_POST_OPENAPI = {
    "requestBody": {
        "required": True,
        **_json({"oneOf": [_RECORD_SCHEMA, {"type": "array", "items": _RECORD_SCHEMA}]}),
    },
    "responses": {
        "202": {"description": "published", **_json(_ACCEPTED_SCHEMA)},
        **{
            code: {"description": what, **_json(_ERROR_SCHEMA)}
            for code, what in (
                ("400", "malformed body or documents; nothing was accepted"),
                ("401", "missing or wrong bearer token"),
                ("413", "body or document count over the limit"),
                ("429", "rate limit; see Retry-After"),
                ("503", "broker unavailable; see Retry-After"),
            )
        },
    },
}


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class TokenBuckets:
    """A token bucket per key (token or client address), at most `max_keys` remembered."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 10_000) -> None:
        self._rate, self._burst, self._max_keys = rate_per_s, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when a request may pass now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


class UndatedStamps:
    """doc_id -> the stamp its first undated arrival got, for the last `max_entries` doc_ids."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._stamps: OrderedDict[str, datetime] = OrderedDict()

    def stamp(self, doc: Document) -> Document:
        """`doc` with the published_at of its first arrival."""
        first = self._stamps.pop(doc.doc_id, doc.published_at)
        self._stamps[doc.doc_id] = first
        while len(self._stamps) > self._max:
            self._stamps.popitem(last=False)
        return doc if first == doc.published_at else doc.model_copy(update={"published_at": first})


class IngestMetrics:
    """Counters of the HTTP push endpoint."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "finpulse_ingest_requests",
            "POST /v1/docs requests by HTTP status.",
            ["status"],
            registry=registry,
        )
        self.accepted = Counter(
            "finpulse_ingest_documents_accepted", "Documents validated and published.", registry=registry
        )
        self.rejected = Counter(
            "finpulse_ingest_documents_rejected", "Documents refused as invalid.", registry=registry
        )
        self.publish_seconds = Histogram(
            "finpulse_ingest_publish_seconds", "Time to publish one request's documents to Kafka.",
            registry=registry,
        )  # fmt: skip


def create_app(
    settings: IngestSettings,
    publish: Publish,
    broker_check: BrokerCheck | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The ASGI app; `publish` sends validated documents on (to Kafka in production) and raises when
    the broker does not take them; `broker_check` backs `/readyz` (none: always ready); `/metrics`
    serves `registry` (default: a fresh one with the process collector).

    Raises IngestConfigError when no token is configured and `allow_anonymous` is off.
    """
    token = settings.api_token.get_secret_value()
    if not token and not settings.allow_anonymous:
        raise IngestConfigError(
            "FINPULSE_INGEST_API_TOKEN is empty: set a token, or FINPULSE_INGEST_ALLOW_ANONYMOUS=true "
            "for a development server that accepts anyone"
        )
    app = FastAPI(title="finpulse ingest", version="1")
    limits = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
    stamps = UndatedStamps(settings.undated_memory)
    retry_after = {"Retry-After": str(math.ceil(settings.retry_after_s))}
    broker_down_until = 0.0
    registry = registry or process_registry()
    metrics = IngestMetrics(registry)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process serves requests (no I/O)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: the broker answers; 200 or 503 with the checks."""
        started = time.monotonic()
        problem = None
        if broker_check is not None:
            try:
                problem = await asyncio.wait_for(
                    asyncio.to_thread(broker_check, settings.publish_timeout_s),
                    settings.publish_timeout_s + 1,
                )
            except TimeoutError:
                problem = f"no answer within {settings.publish_timeout_s:.0f}s"
            except Exception as exc:  # a probe failure is an answer, never a 500
                problem = f"{type(exc).__name__}: {exc}"
        check = {"ok": problem is None, "ms": round((time.monotonic() - started) * 1000, 1)}
        if problem is not None:
            check["error"] = problem
        ready = problem is None
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": {"broker": check}},
            status_code=200 if ready else 503,
            headers=None if ready else retry_after,
        )

    @app.post("/v1/docs", status_code=202, openapi_extra=_POST_OPENAPI)
    async def post_docs(request: Request) -> JSONResponse:
        response = await _post_docs(request)
        metrics.requests.labels(str(response.status_code)).inc()
        return response

    async def _post_docs(request: Request) -> JSONResponse:
        nonlocal broker_down_until
        supplied = request.headers.get("authorization", "")
        if token and not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
        wait = limits.take(token or (request.client.host if request.client else "-"))
        if wait:
            return _error(429, "rate limit exceeded", headers={"Retry-After": str(math.ceil(wait))})
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            return _error(413, f"request body over {settings.max_request_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.max_request_bytes:
                return _error(413, f"request body over {settings.max_request_bytes} bytes")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        records = payload if isinstance(payload, list) else [payload]
        if not records:
            return _error(400, "no documents in body")
        if len(records) > settings.max_docs_per_request:
            return _error(413, f"more than {settings.max_docs_per_request} documents in one request")
        received_at = datetime.now(UTC)
        docs, problems = [], []
        for index, record in enumerate(records):
            try:
                doc = to_document(record, default_source="http", received_at=received_at)
            except DocumentError as exc:
                problems.append({"index": index, "reason": str(exc)})
                continue
            docs.append(stamps.stamp(doc) if is_undated(record) else doc)
        if problems:
            metrics.rejected.inc(len(problems))
            return _error(400, "invalid documents; nothing was accepted", problems=problems)
        if time.monotonic() < broker_down_until:
            return _error(503, "broker unavailable, try again later", headers=retry_after)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.to_thread(publish, docs), settings.publish_timeout_s)
        except Exception as exc:  # the broker did not take them in time: nothing is promised
            broker_down_until = time.monotonic() + settings.retry_after_s
            log.error("publishing %d documents failed: %s: %s", len(docs), type(exc).__name__, exc)
            return _error(503, "broker unavailable, try again later", headers=retry_after)
        metrics.publish_seconds.observe(time.perf_counter() - started)
        metrics.accepted.inc(len(docs))
        return JSONResponse({"accepted": len(docs), "doc_ids": [d.doc_id for d in docs]}, status_code=202)

    return app
