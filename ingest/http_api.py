"""HTTP push endpoint: `POST /v1/docs` with one document or a list, bearer-token protected."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest.records import to_document
from ingest.schema import Document, DocumentError
from ingest.settings import IngestSettings

Publish = Callable[[Sequence[Document]], None]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(settings: IngestSettings, publish: Publish) -> FastAPI:
    """The ASGI app; `publish` sends validated documents on (to Kafka in production)."""
    app = FastAPI(title="finpulse ingest", version="1")
    token = settings.api_token.get_secret_value()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/docs")
    async def post_docs(request: Request) -> JSONResponse:
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
            return _error(400, "invalid documents; nothing was accepted", problems=problems)
        publish(docs)
        return JSONResponse({"accepted": len(docs), "doc_ids": [d.doc_id for d in docs]}, status_code=202)

    return app
