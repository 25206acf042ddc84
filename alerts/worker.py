"""The alert worker: detect spikes in stored buckets, record them, deliver them.

Lifecycle:
    worker = AlertWorker(settings, client)   # no I/O
    worker.setup()                           # load rules and the saved detector state, open HTTP clients
    worker.run_once(watermark=None)          # one poll: detect -> store -> deliver; returns new events
    worker.run_forever(stop_event)           # poll every `poll_interval_s` until the event is set
    worker.health                            # last successful poll, consecutive failures (for probes)
    worker.close()                           # HTTP clients (the ClickHouse client belongs to the caller)

Order inside a poll (the outbox guarantees): new events are inserted into `alerts` before any
delivery; the detector state is saved after them; then every event without a `delivered` or
`failed` attempt per endpoint is sent (one thread per endpoint; Grafana annotations are one more
"endpoint", best effort). A crash anywhere repeats, on restart, only what had not been
acknowledged; an (alert_id, state) already in `alerts` is never fired again.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import orjson

from alerts.buckets import bucket_series
from alerts.delivery import Attempt, RetryPolicy, WebhookSender
from alerts.detector import AlertEvent, DetectorState, detect, state_fingerprint
from alerts.grafana import GrafanaAnnotator
from alerts.metrics import AlertMetrics
from alerts.outbox import Outbox, PendingEvent
from alerts.rules import RuleSet, load_rules
from alerts.settings import AlertSettings, WebhookEndpoint
from ingest.schema import iso_utc
from storage.client import ClickHouseClient, StorageError
from storage.queries import most_negative

log = logging.getLogger(__name__)

GRAFANA_ENDPOINT = "grafana"
# Events older than this are not re-delivered after an outage (receivers would act on stale news).
REDELIVER_MAX_AGE = timedelta(days=7)
# A published_at further ahead than this is a clock error and must not drag the watermark forward.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# After consecutive failed polls the next one waits poll_interval_s * 2**failures, up to this.
MAX_POLL_BACKOFF_S = 300.0


@dataclass
class WorkerHealth:
    """What a health probe needs to know about the poll loop (updated by `run_once`'s caller)."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str = ""
    failed_keys: dict[str, str] = field(default_factory=dict)  # detector keys skipped by the last poll

    def succeeded(self, failed_keys: dict[str, str]) -> None:
        self.last_success_at = datetime.now(UTC)
        self.consecutive_failures = 0
        self.failed_keys = failed_keys

    def failed(self, exc: BaseException) -> None:
        self.last_failure_at = datetime.now(UTC)
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]

    def healthy(self, max_age_s: float, now: datetime | None = None) -> bool:
        """True when a poll succeeded within `max_age_s` (or, before the first one, since start)."""
        reference = self.last_success_at or self.started_at
        return ((now or datetime.now(UTC)) - reference).total_seconds() <= max_age_s

    def to_json(self) -> dict:
        """For a /healthz body."""
        return {
            "started_at": iso_utc(self.started_at),
            "last_success_at": self.last_success_at and iso_utc(self.last_success_at),
            "last_failure_at": self.last_failure_at and iso_utc(self.last_failure_at),
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "failed_keys": dict(self.failed_keys),
        }


def dashboard_link(base_url: str, run_id: str, event: AlertEvent) -> str:
    """Link to the market-sentiment dashboard (variables run, topic, ticker) around the window (±30 min)."""
    params = {"var-run": run_id}
    if event.key_kind in ("topic", "ticker"):
        params[f"var-{event.key_kind}"] = event.key
    params["from"] = str(int((event.window_start - timedelta(minutes=30)).timestamp() * 1000))
    params["to"] = str(int((event.window_end + timedelta(minutes=30)).timestamp() * 1000))
    return f"{base_url}?{urlencode(params)}"


def build_payload(event: AlertEvent, run_id: str, samples: list, dashboard_url: str) -> bytes:
    """The webhook body (sorted keys, so the stored bytes are what every attempt signs)."""
    payload = {
        "alert_id": event.alert_id,
        "idempotency_key": event.idempotency_key,
        "state": event.state,
        "severity": event.severity,
        "rule": event.rule,
        "run_id": run_id,
        "key_kind": event.key_kind,
        "key": event.key,
        "window": {
            "start": iso_utc(event.window_start),
            "end": iso_utc(event.window_end),
            "start_ms": int(event.window_start.timestamp() * 1000),
            "end_ms": int(event.window_end.timestamp() * 1000),
            "decided_at": iso_utc(event.decided_at),
        },
        "metrics": {
            "volume": event.volume,
            "negative": event.negative,
            "negative_share": round(event.negative_share, 6),
            "baseline": round(event.baseline, 6),
            "z_score": round(event.z_score, 4),
        },
        "documents": [
            {"title": s.title, "url": s.url, "source": s.source, "score": round(float(s.score), 4)}
            for s in samples
        ],
        "dashboard_url": dashboard_url,
    }
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


class AlertWorker:
    """Polls ClickHouse, runs the detector, keeps the outbox and delivers (see module docstring)."""

    def __init__(
        self,
        settings: AlertSettings,
        client: ClickHouseClient,
        http: httpx.Client | None = None,
        metrics: AlertMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._client = client
        self._http = http
        self._owns_http = http is None
        self.rules: RuleSet | None = None
        self.state: DetectorState | None = None
        self._watermark: datetime | None = None
        self._outbox = Outbox(client, settings.run_id)
        self._sender: WebhookSender | None = None
        self._grafana: GrafanaAnnotator | None = None
        self._failed_keys: dict[str, str] = {}
        self.health = WorkerHealth()

    def setup(self) -> None:
        """Load and validate the rules, the saved detector state, and open the HTTP clients."""
        s = self.settings
        self.rules = load_rules(s.rules_path)
        self.state = self._outbox.load_state(state_fingerprint(self.rules))
        if self.state is not None and self.state.cutoff is not None:
            self._watermark = datetime.fromtimestamp(self.state.cutoff, UTC)
        if self._http is None:
            self._http = httpx.Client()
        policy = RetryPolicy(s.max_attempts, s.backoff_s, s.backoff_max_s, s.retry_after_max_s)
        self._sender = WebhookSender(self._http, policy)
        if s.grafana_url:
            token = s.grafana_token.get_secret_value() if s.grafana_token else None
            self._grafana = GrafanaAnnotator(s.grafana_url, token, s.grafana_timeout_s)
        log.info(
            "alert worker ready: run_id=%s, %d rules, %d webhook endpoints, grafana=%s, state=%s",
            s.run_id, len(self.rules.rules), len(s.webhooks), bool(self._grafana),
            "resumed" if self.state else "fresh",
        )  # fmt: skip

    def current_watermark(self, now: datetime | None = None) -> datetime | None:
        """Event time up to which data is taken as complete: newest published_at minus the grace period.

        Never moves back. With `idle_advance_s` set it also follows the wall clock, so episodes
        resolve when traffic stops entirely.
        """
        now = now or datetime.now(UTC)
        newest = self._outbox.newest_event_time(not_after=now + MAX_CLOCK_SKEW, not_before=self._watermark)
        candidates = [w for w in (self._watermark,) if w is not None]
        if newest is not None:
            candidates.append(newest - timedelta(seconds=self.settings.grace_s))
        if self.settings.idle_advance_s is not None:
            candidates.append(now - timedelta(seconds=self.settings.idle_advance_s))
        return max(candidates) if candidates else None

    def run_once(self, watermark: datetime | None = None) -> list[AlertEvent]:
        """One poll: judge buckets complete at `watermark` (derived from data when None), store new
        events, then deliver everything pending. Returns the events stored by this call."""
        if self.rules is None:
            raise RuntimeError("call setup() first")
        watermark = watermark or self.current_watermark()
        new_events: list[AlertEvent] = []
        self._failed_keys = {}
        if watermark is not None:
            new_events = self._detect_and_store(watermark)
        self.deliver_pending()
        return new_events

    def _detect_and_store(self, watermark: datetime) -> list[AlertEvent]:
        rules, s = self.rules, self.settings
        if self.state is not None and self.state.cutoff is not None:
            start = datetime.fromtimestamp(self.state.cutoff, UTC)
        else:
            first = int((watermark - timedelta(seconds=s.lookback_s)).timestamp())
            start = datetime.fromtimestamp(first - first % rules.bucket_s, UTC)
        end = watermark
        if end <= start:
            return []
        series = bucket_series(self._client, s.run_id, start, end, rules.bucket_s, rules.key_kinds)
        result = detect(series, rules, self.state, watermark)
        self._failed_keys = {orjson.dumps(k).decode(): error for k, error in result.failed.items()}
        stored = self._outbox.stored({e.alert_id for e in result.events})
        new_events = [e for e in result.events if (e.alert_id, e.state) not in stored]
        if new_events:
            bodies = [(e, self._payload(e)) for e in new_events]
            self._outbox.store(bodies, detected_at=datetime.now(UTC))
            for e in new_events:
                log.warning(
                    "alert %s %s %s %s=%s z=%.1f", e.state, e.severity, e.rule, e.key_kind, e.key, e.z_score
                )
        if self.state is None or result.state.cutoff != self.state.cutoff:
            self._outbox.save_state(result.state, saved_at=datetime.now(UTC))
        self.state = result.state
        self._watermark = max(watermark, self._watermark or watermark)
        return new_events

    def _payload(self, event: AlertEvent) -> bytes:
        s = self.settings
        samples = []
        if s.samples:
            # the firing bucket(s) hold the most telling documents; resolved events list the episode's
            samples = most_negative(
                self._client,
                s.run_id,
                event.key_kind,
                event.key,
                event.window_start,
                event.window_end,
                s.samples,
            )
        link = dashboard_link(s.dashboard_url, s.run_id, event)
        return build_payload(event, s.run_id, samples, link)

    def deliver_pending(self) -> None:
        """Send every unacknowledged event to every endpoint (one thread per endpoint)."""
        since = datetime.now(UTC) - REDELIVER_MAX_AGE
        jobs = [(self._deliver_webhooks, endpoint) for endpoint in self.settings.webhooks]
        if self._grafana is not None:
            jobs.append((self._deliver_grafana, None))
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="alert-delivery") as pool:
            futures = [pool.submit(job, arg, since) for job, arg in jobs]
            for future in futures:
                try:
                    future.result()
                except StorageError as exc:  # the next poll retries
                    log.error("alert delivery pass stopped: %s", exc)

    def _deliver_webhooks(self, endpoint: WebhookEndpoint, since: datetime) -> None:
        for event in self._outbox.pending(endpoint.name, since):
            outcome = self._sender.send(
                endpoint,
                event.payload,
                f"{event.alert_id}:{event.state}",
                on_attempt=lambda attempt, e=event: self._record(e, attempt),
            )
            if outcome == "failed":
                log.error(
                    "webhook %s refused alert %s (%s): not retried",
                    endpoint.name,
                    event.alert_id,
                    event.state,
                )
            elif outcome == "retry":
                log.warning("webhook %s unreachable; pending alerts retried next poll", endpoint.name)
                return

    def _deliver_grafana(self, _: None, since: datetime) -> None:
        for event in self._outbox.pending(GRAFANA_ENDPOINT, since):
            if not self._annotate(event):
                return

    def _annotate(self, event: PendingEvent) -> bool:
        attempted_at = datetime.now(UTC)
        try:
            self._grafana.annotate(orjson.loads(event.payload))
        except Exception as exc:  # grafana-client raises many types; annotations are best effort
            log.warning("Grafana annotation for %s failed (retried next poll): %s", event.alert_id, exc)
            outcome, error = "retry", f"{type(exc).__name__}: {exc}"[:500]
        else:
            outcome, error = "delivered", ""
        self._record(event, Attempt(GRAFANA_ENDPOINT, 1, attempted_at, 0, outcome, error))
        return outcome == "delivered"

    def poll(self) -> bool:
        """`run_once`, its outcome recorded in `health` and the metrics; exceptions are logged, not raised."""
        started = time.monotonic()
        try:
            events = self.run_once()
        except Exception as exc:  # a poll must never end the worker: the next one retries
            self.health.failed(exc)
            if self.metrics is not None:
                self.metrics.poll_failed()
            log.error(
                "alert poll failed (%d in a row, next in %.0fs): %s",
                self.health.consecutive_failures, self.next_poll_delay_s(), exc,
                exc_info=not isinstance(exc, StorageError),
            )  # fmt: skip
            return False
        self.health.succeeded(self._failed_keys)
        if self.metrics is not None:
            self.metrics.poll_succeeded(time.monotonic() - started, events, self.state)
        return True

    def next_poll_delay_s(self) -> float:
        """The poll interval, doubled per consecutive failure up to MAX_POLL_BACKOFF_S."""
        failures = self.health.consecutive_failures
        interval = self.settings.poll_interval_s
        return min(interval * 2 ** min(failures, 16), max(interval, MAX_POLL_BACKOFF_S))

    def _record(self, event: PendingEvent, attempt: Attempt) -> None:
        self._outbox.record(event.alert_id, event.state, attempt)
        if self.metrics is not None:
            self.metrics.delivery_attempt(attempt)

    def run_forever(self, stop_event: threading.Event) -> None:
        """Poll until `stop_event` is set; failed polls back off (see `next_poll_delay_s`)."""
        while not stop_event.is_set():
            self.poll()
            stop_event.wait(self.next_poll_delay_s())

    def close(self) -> None:
        """Close HTTP clients this worker opened."""
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None
