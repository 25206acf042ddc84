"""The insert-only outbox in ClickHouse: alert events, delivery attempts and detector state.

Tables (storage/migrations/002_alerts.sql): `alerts` (one row per event, written before any
delivery), `alert_deliveries` (one row per attempt), `alert_state` (detector state per poll).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from alerts.delivery import Attempt
from alerts.detector import AlertEvent, DetectorState
from storage.client import ClickHouseClient

ALERT_COLUMNS = (
    "alert_id", "run_id", "rule", "key_kind", "key", "state", "severity", "window_start", "window_end",
    "detected_at", "volume", "negative", "negative_share", "baseline", "z_score", "payload",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "alert_id", "state", "endpoint", "attempt", "attempted_at", "status_code", "outcome", "error",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A stored event not yet acknowledged by one endpoint."""

    alert_id: str
    state: str
    payload: bytes


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Outbox:
    """Reads and appends the outbox tables of one run."""

    def __init__(self, client: ClickHouseClient, run_id: str) -> None:
        self._client = client
        self._run_id = run_id
        self._db = client.database

    def stored(self, alert_ids: set[str]) -> set[tuple[str, str]]:
        """(alert_id, state) pairs already in `alerts` among `alert_ids`."""
        if not alert_ids:
            return set()
        rows = self._client.query(
            f"SELECT DISTINCT alert_id, toString(state) FROM {self._db}.alerts "
            "WHERE run_id = %(r)s AND alert_id IN %(ids)s",
            {"r": self._run_id, "ids": tuple(sorted(alert_ids))},
        )
        return {(a, s) for a, s in rows}

    def store(self, events: list[tuple[AlertEvent, bytes]], detected_at: datetime) -> None:
        """Append events with their webhook bodies."""
        rows = [
            (
                e.alert_id, self._run_id, e.rule, e.key_kind, e.key, e.state, e.severity, e.window_start,
                e.window_end, detected_at, e.volume, e.negative, e.negative_share, e.baseline, e.z_score,
                body.decode(),
            )
            for e, body in events
        ]  # fmt: skip
        self._client.insert(f"{self._db}.alerts", ALERT_COLUMNS, rows)

    def pending(self, endpoint: str, since: datetime) -> list[PendingEvent]:
        """Events detected since `since` with neither a `delivered` nor a `failed` attempt at `endpoint`."""
        rows = self._client.query(
            f"""
            SELECT alert_id, toString(state), any(payload), min(detected_at) AS first_detected
            FROM {self._db}.alerts
            WHERE run_id = %(r)s AND detected_at >= %(since)s
              AND concat(alert_id, ':', toString(state)) NOT IN (
                  SELECT concat(alert_id, ':', state) FROM {self._db}.alert_deliveries
                  WHERE endpoint = %(e)s AND outcome IN ('delivered', 'failed'))
            GROUP BY alert_id, state
            ORDER BY first_detected, alert_id, state
            """,
            {"r": self._run_id, "e": endpoint, "since": since},
        )
        return [PendingEvent(a, s, p.encode()) for a, s, p, _ in rows]

    def record(self, alert_id: str, state: str, attempt: Attempt) -> None:
        """Append one delivery attempt."""
        row = (
            alert_id, state, attempt.endpoint, attempt.attempt, attempt.attempted_at, attempt.status_code,
            attempt.outcome, attempt.error,
        )  # fmt: skip
        self._client.insert(f"{self._db}.alert_deliveries", DELIVERY_COLUMNS, [row])

    def load_state(self, fingerprint: str) -> DetectorState | None:
        """The latest detector state saved under this fingerprint (`detector.state_fingerprint`), if any."""
        rows = self._client.query(
            f"SELECT state FROM {self._db}.alert_state WHERE run_id = %(r)s AND rules_fingerprint = %(f)s "
            "ORDER BY cutoff DESC, saved_at DESC LIMIT 1",
            {"r": self._run_id, "f": fingerprint},
        )
        return DetectorState.from_json(orjson.loads(rows[0][0])) if rows else None

    def save_state(self, state: DetectorState, saved_at: datetime) -> None:
        """Append the state after a poll (older rows stay as history)."""
        if state.cutoff is None:
            return
        row = (
            self._run_id, state.rules_fingerprint, datetime.fromtimestamp(state.cutoff, UTC), saved_at,
            orjson.dumps(state.to_json()).decode(),
        )  # fmt: skip
        self._client.insert(
            f"{self._db}.alert_state", ("run_id", "rules_fingerprint", "cutoff", "saved_at", "state"), [row]
        )

    def newest_event_time(self, not_after: datetime, not_before: datetime | None = None) -> datetime | None:
        """Latest `published_at` stored for the run within [not_before, not_after] (None when none).

        `not_after` ignores clock errors in the future; `not_before` keeps the scan to recent parts.
        """
        ((newest, count),) = self._client.query(
            f"SELECT max(published_at), count() FROM {self._db}.classifications "
            "WHERE run_id = %(r)s AND published_at <= %(limit)s AND published_at >= %(floor)s",
            {"r": self._run_id, "limit": not_after, "floor": not_before or datetime.fromtimestamp(0, UTC)},
        )
        return _utc(newest) if count else None
