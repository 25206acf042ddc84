"""HTTP push endpoint: `POST /v1/docs` with one document or a list, bearer-token protected;
`GET /metrics` for Prometheus (names in docs/operations.md)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ingest.ops import process_registry
from ingest.records import to_document
from ingest.schema import Document, DocumentError
from ingest.settings import IngestSettings

Publish = Callable[[Sequence[Document]], None]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


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
    settings: IngestSettings, publish: Publish, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The ASGI app; `publish` sends validated documents on (to Kafka in production); `/metrics`
    serves `registry` (default: a fresh one with the process collector)."""
    app = FastAPI(title="finpulse ingest", version="1")
    token = settings.api_token.get_secret_value()
    registry = registry or process_registry()
    metrics = IngestMetrics(registry)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/docs")
    async def post_docs(request: Request) -> JSONResponse:
        response = await _post_docs(request)
        metrics.requests.labels(str(response.status_code)).inc()
        return response

    async def _post_docs(request: Request) -> JSONResponse:
        if token:
            supplied = request.headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return _error(401, "missing or wrong bearer token")
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
        docs, problems = [], []
        for index, record in enumerate(records):
            try:
                docs.append(to_document(record, default_source="http"))
            except DocumentError as exc:
                problems.append({"index": index, "reason": str(exc)})
        if problems:
            metrics.rejected.inc(len(problems))
            return _error(400, "invalid documents; nothing was accepted", problems=problems)
        started = time.perf_counter()
        publish(docs)
        metrics.publish_seconds.observe(time.perf_counter() - started)
        metrics.accepted.inc(len(docs))
        return JSONResponse({"accepted": len(docs), "doc_ids": [d.doc_id for d in docs]}, status_code=202)

    return app
