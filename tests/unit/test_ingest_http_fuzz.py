"""Schema-driven fuzzing of the ingest HTTP API (Schemathesis): generated and negated requests
against its own OpenAPI schema; no answer may be a server error, accept a schema-violating body, or
break the documented responses."""

from __future__ import annotations

import httpx
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance

from ingest.http_api import create_app
from ingest.settings import IngestSettings

APP = create_app(
    IngestSettings(api_token=SecretStr("fuzz"), rate_limit_per_s=1e6, rate_limit_burst=10**6),
    lambda docs: None,
    broker_check=lambda timeout_s: None,
)
CLIENT = TestClient(APP, base_url="http://ingest")
schema = schemathesis.openapi.from_dict(CLIENT.get("/openapi.json").json())


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_per_its_schema(case) -> None:
    # Sent through Starlette's TestClient (Schemathesis' own ASGI transport needs another requests).
    kwargs = case.as_transport_kwargs(base_url="http://ingest", headers={"Authorization": "Bearer fuzz"})
    kwargs.pop("url")
    response = CLIENT.request(url=case.formatted_path, **{k: v for k, v in kwargs.items() if v is not None})
    assert isinstance(response, httpx.Response)
    # A schema cannot say everything a document must satisfy (title or text, a plausible time), so
    # a schema-valid body may still be a 400; everything else is checked.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
