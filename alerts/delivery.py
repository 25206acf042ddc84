"""Signed webhook delivery with bounded retries.

Every POST carries the JSON body plus:
- `X-Finpulse-Timestamp`: Unix seconds when the attempt was signed;
- `X-Finpulse-Signature`: hex HMAC-SHA256 of `timestamp + "." + body` under the endpoint's secret;
- `Idempotency-Key`: `alert_id:state`, identical on every retry and re-delivery.

Outcomes per attempt: `delivered` (2xx), `failed` (4xx other than 429: permanent, not retried),
`retry` (5xx, 429, timeout, connection error: retried with exponential backoff and jitter,
429 after its Retry-After).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from alerts.settings import WebhookEndpoint

Outcome = Literal["delivered", "retry", "failed"]
TIMESTAMP_HEADER = "X-Finpulse-Timestamp"
SIGNATURE_HEADER = "X-Finpulse-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp.body`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: True when the signature matches and the timestamp is within `tolerance_s`.

    Compare over the raw request body bytes (before any JSON parsing); the tolerance rejects
    replays of an old, captured request.
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST and how it went (a row of `alert_deliveries`)."""

    endpoint: str
    attempt: int
    attempted_at: datetime
    status_code: int
    outcome: Outcome
    error: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Pause after failed attempt number `attempt` (1-based): capped exponential, jittered 50–100 %."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s) * (0.5 + 0.5 * rng())


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebhookSender:
    """Posts signed bodies to endpoints; `send` returns after success, a permanent error or the last retry."""

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self._policy = policy
        self._sleep = sleep
        self._rng = rng

    def post_once(self, endpoint: WebhookEndpoint, body: bytes, idempotency_key: str) -> httpx.Response:
        """One signed POST (raises httpx errors on timeouts and connection failures)."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "finpulse-alerts/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(endpoint.secret.get_secret_value(), timestamp, body),
            "Idempotency-Key": idempotency_key,
        }
        return self._http.post(endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_s)

    def send(
        self,
        endpoint: WebhookEndpoint,
        body: bytes,
        idempotency_key: str,
        on_attempt: Callable[[Attempt], None] = lambda attempt: None,
    ) -> Outcome:
        """Deliver with retries; every attempt is reported to `on_attempt` before the next one."""
        policy = self._policy
        for number in range(1, policy.max_attempts + 1):
            attempted_at = datetime.now(UTC)
            pause = None
            try:
                response = self.post_once(endpoint, body, idempotency_key)
            except httpx.HTTPError as exc:
                status, outcome, error = 0, "retry", f"{type(exc).__name__}: {exc}"[:500]
            else:
                status, error = response.status_code, ""
                if response.is_success:
                    outcome = "delivered"
                elif status == 429 or status >= 500:
                    outcome, error = "retry", response.text[:500]
                    if status == 429:
                        pause = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    outcome, error = "failed", response.text[:500]
            on_attempt(Attempt(endpoint.name, number, attempted_at, status, outcome, error))
            if outcome != "retry" or number == policy.max_attempts:
                return outcome
            if pause is None:
                pause = policy.backoff(number, self._rng)
            self._sleep(min(pause, policy.retry_after_max_s))
        return "retry"
