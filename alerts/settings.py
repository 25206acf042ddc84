"""Alert worker settings (env prefix FINPULSE_ALERTS_); read once by the CLI and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.rules import DEFAULT_RULES_PATH


class WebhookEndpoint(BaseModel):
    """One receiver: alerts are POSTed to `url`, signed with `secret` (and, while a rotation is under
    way, also with `previous_secret`, so the receiver may switch at its own pace)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: SecretStr
    previous_secret: SecretStr | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def signing_secrets(self) -> list[str]:
        """The secrets every request is signed with: the current one first."""
        secrets = [self.secret.get_secret_value()]
        if self.previous_secret is not None and self.previous_secret.get_secret_value():
            secrets.append(self.previous_secret.get_secret_value())
        return secrets

    @property
    def name(self) -> str:
        """How the endpoint is recorded in `alert_deliveries` (the URL without its query string)."""
        return self.url.split("?", 1)[0]


class AlertSettings(BaseSettings):
    """What the alert worker watches, how often, and where it delivers.

    `FINPULSE_ALERTS_WEBHOOKS` is JSON: `[{"url": "https://…", "secret": "…", "timeout_s": 5}]`.
    """

    model_config = SettingsConfigDict(env_prefix="FINPULSE_ALERTS_")

    rules_path: Path = DEFAULT_RULES_PATH
    run_id: str = "live"
    poll_interval_s: float = Field(default=5.0, gt=0)
    lookback_s: int = Field(default=86_400, ge=60, description="history judged on a fresh start")
    grace_s: int = Field(default=120, ge=0, description="late-data allowance behind the newest event")
    idle_advance_s: float | None = Field(
        default=None, description="also advance the watermark to now minus this when traffic stops"
    )
    webhooks: list[WebhookEndpoint] = []
    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    retry_after_max_s: float = Field(default=300.0, ge=0)
    samples: int = Field(default=5, ge=0, le=50, description="most negative documents per alert")
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    grafana_timeout_s: float = 5.0
    dashboard_url: str = "http://localhost:3000/d/finpulse-market"
    # /healthz, /readyz and /metrics (None: not served).
    ops_port: int | None = None
    ops_host: str = "127.0.0.1"
