"""Grafana annotations for alert events (best effort; never blocks webhooks).

Uses two Grafana HTTP endpoints through `grafana-client` (keyword arguments only: its positional
order differs from the older `grafana-api`): `GET /api/annotations?tags=…` to skip an event that
is annotated already, and `POST /api/annotations` to add it.
"""

from __future__ import annotations

import html

from grafana_client import GrafanaApi


def annotation_tag(alert_id: str, state: str) -> str:
    """The tag that identifies one alert event's annotation."""
    return f"finpulse-alert:{alert_id}:{state}"


def annotation_text(text: str, dashboard_url: str) -> str:
    """Annotation HTML: Grafana renders it, and keys (tickers, topics) come from hostile input."""
    return f'{html.escape(text)} <a href="{html.escape(dashboard_url, quote=True)}">dashboard</a>'


class GrafanaAnnotator:
    """Adds one annotation per alert event, idempotently."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 5.0) -> None:
        self._api = GrafanaApi.from_url(url=url, credential=token, timeout=timeout_s)

    def annotate(self, payload: dict) -> bool:
        """Annotate the event described by a webhook payload; False when it was there already."""
        tag = annotation_tag(payload["alert_id"], payload["state"])
        if self._api.annotations.find_annotations(tags=[tag], limit=1):
            return False
        metrics = payload["metrics"]
        text = (
            f"{payload['state'].upper()} {payload['severity']}: {payload['rule']} {payload['key_kind']}="
            f"{payload['key']} negative {metrics['negative']}/{metrics['volume']} "
            f"({metrics['negative_share']:.0%} vs {metrics['baseline']:.0%}, z={metrics['z_score']:.1f})"
        )
        self._api.annotations.add_annotation(
            time_from=payload["window"]["start_ms"],
            time_to=payload["window"]["end_ms"],
            tags=[
                "finpulse",
                payload["state"],
                payload["severity"],
                f"{payload['key_kind']}:{payload['key']}",
                tag,
            ],
            text=annotation_text(text, payload["dashboard_url"]),
        )
        return True
