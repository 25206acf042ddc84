"""ClickHouse connection settings (env prefix FINPULSE_CLICKHOUSE_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClickHouseSettings(BaseSettings):
    """Where results live: a ClickHouse server (production) or embedded chDB (one process)."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_CLICKHOUSE_")

    mode: Literal["server", "embedded"] = "embedded"
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "finpulse"
    embedded_path: Path = Path("var/chdb")
    connect_timeout_s: float = 5.0
    send_receive_timeout_s: float = 60.0
    insert_attempts: int = 8
    insert_backoff_s: float = 0.5
    insert_backoff_max_s: float = 10.0
    retention_days: int | None = None
