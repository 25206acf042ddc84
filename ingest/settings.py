"""Settings of the ingest sources: the HTTP push endpoint and feed polling."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """HTTP push endpoint and feed polling (env prefix FINPULSE_INGEST_)."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_INGEST_")

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_token: SecretStr = SecretStr("")
    # Development only: serve without a token (accepting anyone). Without it an empty token refuses to start.
    allow_anonymous: bool = False
    max_request_bytes: int = 1_000_000
    max_docs_per_request: int = 1_000
    # How long a POST waits for the broker to take its documents before answering 503.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    # Retry-After of a 503; for this long after a failed publish, posts get the 503 at once.
    retry_after_s: float = Field(default=5.0, gt=0)
    # Requests per second per token (per client address when anonymous), with bursts up to `burst`.
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    # Undated documents remembered (doc_id -> first stamp) so that a retry is the same row.
    undated_memory: int = Field(default=100_000, ge=0)
    rss_poll_interval_s: float = 60.0
    state_dir: Path = Path("var/ingest")
