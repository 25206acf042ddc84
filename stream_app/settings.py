"""Stream worker settings (env prefix FINPULSE_STREAM_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamSettings(BaseSettings):
    """Micro-batching and worker identity."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_STREAM_")

    app_id: str = "finpulse-stream"
    run_id: str = "live"
    input_topics: list[str] = []  # empty: the raw topic from KafkaSettings
    max_batch: int = 64
    max_wait_s: float = 0.5
    # Bound on messages faust buffers per partition ahead of the agent (backpressure).
    buffer_maxsize: int = 1_024
    commit_interval_s: float = 1.0
    worker_name: str = ""
    web_port: int | None = None  # None: no web server, so several workers can share a host
    log_level: str = "warning"
