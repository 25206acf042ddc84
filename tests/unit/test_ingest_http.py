"""The HTTP push endpoint's contract: auth, limits, validation (publishing replaced by a list)."""

from __future__ import annotations

import asyncio
import time
from unittest.mock import ANY

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.http_api import IngestConfigError, create_app
from ingest.publisher import PublishError
from ingest.settings import IngestSettings

DOC = {"id": "1", "title": "Fed holds rates", "published_at": "2026-11-02T13:00:00Z", "source": "wire"}


@pytest.fixture
def published() -> list:
    return []


@pytest.fixture
def client(published: list) -> TestClient:
    settings = IngestSettings(api_token=SecretStr("s3cret"), max_request_bytes=2_000, max_docs_per_request=3)
    return TestClient(create_app(settings, published.extend))


AUTH = {"Authorization": "Bearer s3cret"}


def test_accepts_one_or_many(client: TestClient, published: list) -> None:
    one = client.post("/v1/docs", json=DOC, headers=AUTH)
    assert one.status_code == 202 and one.json()["accepted"] == 1
    many = client.post("/v1/docs", json=[DOC, {**DOC, "id": "2"}], headers=AUTH)
    assert many.status_code == 202 and many.json()["accepted"] == 2
    assert [d.source for d in published] == ["wire"] * 3
    assert published[0].doc_id == published[1].doc_id  # same item, same document


def test_requires_the_bearer_token(client: TestClient) -> None:
    assert client.post("/v1/docs", json=DOC).status_code == 401
    assert client.post("/v1/docs", json=DOC, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_limits_body_size_and_document_count(client: TestClient) -> None:
    big = {**DOC, "text": "x" * 5_000}
    assert client.post("/v1/docs", json=big, headers=AUTH).status_code == 413
    assert client.post("/v1/docs", json=[DOC] * 4, headers=AUTH).status_code == 413


def test_bad_input_is_a_400_with_reasons_and_nothing_is_published(
    client: TestClient, published: list
) -> None:
    response = client.post("/v1/docs", content=b"{nope", headers=AUTH)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = client.post("/v1/docs", content=orjson.dumps([DOC, {"id": "2"}]), headers=AUTH)
    assert response.status_code == 400
    assert response.json()["problems"][0]["index"] == 1
    assert "neither title nor text" in response.json()["problems"][0]["reason"]
    assert published == []


def test_no_token_refuses_to_start_unless_the_development_flag_is_set() -> None:
    with pytest.raises(IngestConfigError, match="FINPULSE_INGEST_API_TOKEN"):
        create_app(IngestSettings(), [].extend)
    open_app = TestClient(create_app(IngestSettings(allow_anonymous=True), [].extend))
    assert open_app.post("/v1/docs", json=DOC).status_code == 202


@pytest.mark.parametrize(
    ("field", "value"),
    [("published_at", {}), ("published_at", [1]), ("published_at", 1e20), ("tickers", 5), ("meta", "x")],
)
def test_malformed_fields_are_a_400_naming_the_field(client: TestClient, field: str, value) -> None:
    response = client.post("/v1/docs", json={**DOC, field: value}, headers=AUTH)
    assert response.status_code == 400
    assert field in response.json()["problems"][0]["reason"]


def test_a_retried_undated_document_keeps_its_first_stamp(client: TestClient, published: list) -> None:
    undated = {k: v for k, v in DOC.items() if k != "published_at"}
    for _ in range(2):
        assert client.post("/v1/docs", json=undated, headers=AUTH).status_code == 202
        time.sleep(0.01)
    first, retry = published
    assert first.doc_id == retry.doc_id and first.published_at == retry.published_at


def _slow_publish(docs) -> None:
    time.sleep(3)


def test_a_hanging_broker_is_a_fast_503_and_the_server_keeps_answering() -> None:
    settings = IngestSettings(api_token=SecretStr("s3cret"), publish_timeout_s=0.5, retry_after_s=7)
    app = create_app(settings, _slow_publish, broker_check=lambda timeout_s: "connection refused")

    async def scenario() -> tuple:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            started = time.monotonic()
            post = asyncio.create_task(http.post("/v1/docs", json=DOC, headers=AUTH))
            await asyncio.sleep(0.05)
            health = await http.get("/healthz")
            health_s = time.monotonic() - started
            first = await post
            first_s = time.monotonic() - started
            again = await http.post("/v1/docs", json=DOC, headers=AUTH)  # known down: answered at once
            again_s = time.monotonic() - started - first_s
            ready = await http.get("/readyz")
            return health, health_s, first, first_s, again, again_s, ready

    health, health_s, first, first_s, again, again_s, ready = asyncio.run(scenario())
    assert health.status_code == 200 and health_s < 0.4
    assert first.status_code == 503 and first.headers["Retry-After"] == "7" and first_s < 2
    assert again.status_code == 503 and again_s < 0.2
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"] == {"ok": False, "ms": ANY, "error": "connection refused"}


def test_a_refusing_broker_is_a_503_and_readiness_follows_the_broker() -> None:
    def refuse(docs) -> None:
        raise PublishError("1 messages refused by the broker")

    up = {"ok": True}
    settings = IngestSettings(api_token=SecretStr("s3cret"))
    app = TestClient(create_app(settings, refuse, broker_check=lambda t: None if up["ok"] else "down"))
    assert app.post("/v1/docs", json=DOC, headers=AUTH).status_code == 503
    assert app.get("/readyz").status_code == 200 and app.get("/readyz").json()["checks"]["broker"]["ok"]
    up["ok"] = False
    assert app.get("/readyz").status_code == 503


def test_each_token_is_rate_limited() -> None:
    settings = IngestSettings(api_token=SecretStr("s3cret"), rate_limit_per_s=0.5, rate_limit_burst=2)
    app = TestClient(create_app(settings, [].extend))
    codes = [app.post("/v1/docs", json=DOC, headers=AUTH).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert int(app.post("/v1/docs", json=DOC, headers=AUTH).headers["Retry-After"]) >= 1
    assert app.post("/v1/docs", json=DOC).status_code == 401  # wrong tokens do not spend the bucket
