"""Prometheus metrics of the alert worker (names in docs/operations.md), and its poll health.

`AlertMetrics(registry)` is built by the composition root; the worker reports each poll and each
delivery attempt to it, and readiness asks it when the last poll succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alerts.delivery import Attempt
from alerts.detector import AlertEvent, DetectorState

POLL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class AlertMetrics:
    """Counters and gauges of one alert worker process."""

    def __init__(self, registry: CollectorRegistry, endpoints: Iterable[str] = ()) -> None:
        """`endpoints`: the configured delivery endpoints, whose series exist from the start."""
        self.polls = Counter(
            "finpulse_alerts_polls", "Detector polls by outcome (ok, failed).", ["outcome"], registry=registry
        )
        self.poll_seconds = Histogram(
            "finpulse_alerts_poll_seconds", "Duration of successful polls (detect, store, deliver).",
            buckets=POLL_BUCKETS, registry=registry,
        )  # fmt: skip
        self.last_success = Gauge(
            "finpulse_alerts_last_successful_poll_timestamp_seconds",
            "When the last poll succeeded (epoch s).",
            registry=registry,
        )  # fmt: skip
        self.consecutive_failures = Gauge(
            "finpulse_alerts_consecutive_poll_failures", "Failed polls since the last successful one.",
            registry=registry,
        )  # fmt: skip
        self.events = Counter(
            "finpulse_alerts_events", "Alert events stored, by state (firing, resolved).", ["state"],
            registry=registry,
        )  # fmt: skip
        self.episodes_open = Gauge(
            "finpulse_alerts_episodes_open", "Alert episodes currently firing.", registry=registry
        )
        self.deliveries = Counter(
            "finpulse_alerts_delivery_attempts",
            "Delivery attempts by endpoint and outcome (delivered, retry, failed).",
            ["endpoint", "outcome"], registry=registry,
        )  # fmt: skip
        self.responses = Counter(
            "finpulse_alerts_webhook_responses",
            "Delivery attempts by endpoint and HTTP status (0: no response: timeout, refused).",
            ["endpoint", "status"], registry=registry,
        )  # fmt: skip
        for outcome in ("ok", "failed"):
            self.polls.labels(outcome)
        for state in ("firing", "resolved"):
            self.events.labels(state)
        for endpoint in endpoints:
            for outcome in ("delivered", "retry", "failed"):
                self.deliveries.labels(endpoint, outcome)
        self._last_success: float | None = None
        # Until the first success the gauge holds the start time, so a worker that never polls ages.
        self.last_success.set(time.time())

    def poll_succeeded(self, seconds: float, events: list[AlertEvent], state: DetectorState | None) -> None:
        """Record a successful poll and the episodes open after it."""
        self.polls.labels("ok").inc()
        self.poll_seconds.observe(seconds)
        self._last_success = time.time()
        self.last_success.set(self._last_success)
        self.consecutive_failures.set(0)
        for event in events:
            self.events.labels(event.state).inc()
        if state is not None:
            self.episodes_open.set(sum(1 for key in state.keys.values() if key.active))

    def poll_failed(self) -> None:
        """Record a failed poll (ClickHouse unreachable or refusing)."""
        self.polls.labels("failed").inc()
        self.consecutive_failures.inc()

    def delivery_attempt(self, attempt: Attempt) -> None:
        """Record one webhook POST or Grafana annotation attempt."""
        self.deliveries.labels(attempt.endpoint, attempt.outcome).inc()
        self.responses.labels(attempt.endpoint, str(attempt.status_code)).inc()

    def last_successful_poll(self) -> float | None:
        """Epoch seconds of the last successful poll (None before the first)."""
        return self._last_success
