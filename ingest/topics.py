"""The Kafka contract that ingest, the stream app and replay share: where documents go, how to connect.

Ingest publishes to `raw_topic`, the stream app reads it and dead-letters to `dlq_topic`; the
message format itself is `ingest.schema`. Each process reads these settings once at its entry point.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Kafka connection and topic names (env prefix FINPULSE_KAFKA_)."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_KAFKA_")

    bootstrap: str = "127.0.0.1:9092"
    raw_topic: str = "finpulse.docs.raw"
    dlq_topic: str = "finpulse.docs.dlq"
    partitions: int = 4
    replication_factor: int = 1
    # Real Kafka refuses sessions below 6 s; the embedded Tansu broker wants 2 s (its group join
    # waits half the session timeout).
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 3.0
    rebalance_timeout_s: float = 10.0
    # How long topic administration waits for the broker (an unreachable broker fails after this).
    admin_timeout_s: float = 10.0
    producer_linger_ms: int = 5
    producer_batch_bytes: int = 256 * 1024
    compression: str | None = "lz4"

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]
