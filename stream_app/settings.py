"""Stream worker settings (env prefix FINPULSE_STREAM_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamSettings(BaseSettings):
    """Micro-batching and worker identity."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_STREAM_")

    app_id: str = "finpulse-stream"
    run_id: str = "live"
    input_topics: list[str] = []  # empty: the raw topic from KafkaSettings
    max_batch: int = 256
    # Upper bound on how long the first message of a batch waits for the batch to fill.
    max_wait_s: float = 0.5
    # Adaptive: batch size and wait follow the arrival rate and the measured inference and insert
    # times, within [min_batch, max_batch] and [0, max_wait_s]; off: max_batch or max_wait_s.
    adaptive_batching: bool = True
    min_batch: int = 1
    # Classify batch k+1 while batch k is being inserted (k is still acknowledged only once stored).
    overlap_insert: bool = True
    # Bound on messages queued ahead of the model (at least max_batch); when full the stream waits.
    queue_maxsize: int = 512
    # Bound on messages faust buffers per partition ahead of the agent (backpressure).
    buffer_maxsize: int = 1_024
    commit_interval_s: float = 1.0
    # Consumer fetch wait in ms (None: faust's 1500). Kafka answers fetches as soon as data arrives;
    # the embedded Tansu broker holds them for the whole wait, so tests and demos on it set ~50.
    fetch_max_wait_ms: int | None = None
    worker_name: str = ""
    web_port: int | None = None  # None: no web server, so several workers can share a host
    # /healthz, /readyz and /metrics (None: not served, so several workers can share a host).
    ops_port: int | None = None
    ops_host: str = "127.0.0.1"
    # Readiness fails when messages wait and no batch was stored for this long.
    stall_after_s: float = 120.0
    log_level: str = "warning"
