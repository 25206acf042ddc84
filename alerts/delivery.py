"""Signed webhook delivery with bounded retries.

Every POST carries the JSON body plus:
- `X-Finpulse-Timestamp`: Unix seconds when the attempt was signed;
- `X-Finpulse-Signature`: `v1=<hex>` per secret, comma-separated: scheme version 1 is the hex
  HMAC-SHA256 of `timestamp + "." + body`, under the endpoint's `secret` and, while a rotation is
  under way, also under its `previous_secret`;
- `Idempotency-Key`: `alert_id:state`, identical on every retry and re-delivery (a convenience copy:
  receivers dedupe on the body's signed `idempotency_key`, since the header is not signed).

Outcomes per attempt: `delivered` (2xx), `failed` (4xx other than 429: permanent, not retried),
`retry` (5xx, 429, timeout, connection error: retried with exponential backoff and jitter,
429 after its Retry-After), through the project's one retry helper (`ingest.retry`).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from alerts.settings import WebhookEndpoint
from ingest.retry import RetriesExhausted, RetryPolicy, TransientError, call_with_retries

__all__ = ["RetryPolicy", "WebhookSender", "sign", "signature_header", "verify_signature"]

Outcome = Literal["delivered", "retry", "failed"]
TIMESTAMP_HEADER = "X-Finpulse-Timestamp"
SIGNATURE_HEADER = "X-Finpulse-Signature"
SIGNATURE_SCHEME = "v1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp.body` (signature scheme v1)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: str, body: bytes) -> str:
    """`v1=<hex>` under each secret, comma-separated (two during a rotation)."""
    return ",".join(f"{SIGNATURE_SCHEME}={sign(secret, timestamp, body)}" for secret in secrets)


def verify_signature(
    secrets: str | Sequence[str],
    timestamp: str,
    body: bytes,
    header: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: True when one `v1=` signature of `header` matches one of `secrets` (the
    current one and, during a rotation, the next or previous one) and the timestamp is within
    `tolerance_s`.

    Compare over the raw request body bytes (before any JSON parsing); the tolerance rejects
    replays of an old, captured request; a replay inside the window is caught by deduplicating
    on the body's signed `idempotency_key`. Signatures of unknown schemes are ignored.
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    offered = [
        value
        for scheme, _, value in (part.strip().partition("=") for part in (header or "").split(","))
        if scheme == SIGNATURE_SCHEME and value
    ]
    expected = [
        sign(secret, timestamp, body) for secret in ([secrets] if isinstance(secrets, str) else secrets)
    ]
    return any(hmac.compare_digest(e, o) for e in expected for o in offered)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST and how it went (a row of `alert_deliveries`)."""

    endpoint: str
    attempt: int
    attempted_at: datetime
    status_code: int
    outcome: Outcome
    error: str


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
            SIGNATURE_HEADER: signature_header(endpoint.signing_secrets(), timestamp, body),
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

        def attempt(number: int) -> None:
            attempted_at = datetime.now(UTC)
            try:
                response = self.post_once(endpoint, body, idempotency_key)
            except httpx.HTTPError as exc:
                status, outcome, error, pause = 0, "retry", f"{type(exc).__name__}: {exc}"[:500], None
            else:
                status, error, pause = response.status_code, "", None
                if response.is_success:
                    outcome = "delivered"
                elif status == 429 or status >= 500:
                    outcome, error = "retry", response.text[:500]
                    if status == 429:
                        pause = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    outcome, error = "failed", response.text[:500]
            on_attempt(Attempt(endpoint.name, number, attempted_at, status, outcome, error))
            if outcome == "retry":
                raise TransientError(error or f"HTTP {status}", retry_after_s=pause)
            if outcome == "failed":
                raise _Refused(status)

        try:
            call_with_retries(attempt, self._policy, sleep=self._sleep, rng=self._rng)
        except _Refused:
            return "failed"
        except RetriesExhausted:
            return "retry"
        return "delivered"


class _Refused(Exception):
    """The receiver answered with a permanent (4xx) error."""
