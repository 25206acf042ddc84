"""The HTTP push endpoint's contract: auth, limits, validation (publishing replaced by a list)."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.http_api import create_app
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
