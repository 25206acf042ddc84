"""Settings of the ingest sources: the HTTP push endpoint and feed polling."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """HTTP push endpoint and feed polling (env prefix FINPULSE_INGEST_)."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_INGEST_")

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_token: SecretStr = SecretStr("")
    max_request_bytes: int = 1_000_000
    max_docs_per_request: int = 1_000
    rss_poll_interval_s: float = 60.0
    state_dir: Path = Path("var/ingest")
