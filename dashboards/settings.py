"""Grafana provisioning settings (env prefix FINPULSE_GRAFANA_)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GrafanaSettings(BaseSettings):
    """Where `finpulse grafana provision` pushes to, and how Grafana reaches ClickHouse."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_GRAFANA_")

    url: str = "http://127.0.0.1:3000"
    token: SecretStr = SecretStr("")
    folder: str = "finpulse"
    timeout_s: float = 10.0
    # ClickHouse as seen from the Grafana server (native protocol).
    clickhouse_host: str = "clickhouse"
    clickhouse_port: int = 9000
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    database: str = "finpulse"
