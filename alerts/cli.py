"""`finpulse alerts …`: the alert worker and a webhook check (composition root of the alert stage)."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

import typer

app = typer.Typer(help="Negative-sentiment spike alerts: worker and webhook tools.", no_args_is_help=True)


@app.command()
def run(
    once: bool = typer.Option(False, "--once", help="Run one poll (detect, store, deliver) and exit."),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Run the alert worker (settings from FINPULSE_ALERTS_* and FINPULSE_CLICKHOUSE_*)."""
    from alerts.metrics import AlertMetrics
    from alerts.rules import RulesError
    from alerts.settings import AlertSettings
    from alerts.worker import AlertWorker
    from ingest.ops import OpsServer, process_registry, recent_progress_check
    from storage.client import connect, readiness_check
    from storage.migrate import migrate
    from storage.settings import ClickHouseSettings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = AlertSettings()
    clickhouse = ClickHouseSettings()
    registry = process_registry()
    endpoints = [endpoint.name for endpoint in settings.webhooks]
    metrics = AlertMetrics(registry, endpoints + (["grafana"] if settings.grafana_url else []))
    ops = None
    if settings.ops_port is not None and not once:
        # Readiness: ClickHouse answers (on its own connection) and a poll succeeded recently.
        progress_limit_s = max(3 * settings.poll_interval_s, 30.0)
        progress = recent_progress_check(metrics.last_successful_poll, progress_limit_s, "successful poll")
        ops = OpsServer(settings.ops_host, settings.ops_port, registry, {"progress": progress})
        ops.start()
    client = connect(clickhouse)
    health_client = connect(clickhouse) if clickhouse.mode == "server" and ops is not None else client
    if ops is not None:
        ops.add_check("clickhouse", readiness_check(health_client))
    migrate(client, clickhouse.retention_days)
    worker = AlertWorker(settings, client, metrics=metrics)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.setup()
        if once:
            events = worker.run_once()
            typer.echo(f"{len(events)} new alert events")
        else:
            worker.run_forever(stop)
    except RulesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    finally:
        worker.close()
        if ops is not None:
            ops.stop()
        if health_client is not client:
            health_client.close()
        client.close()


@app.command("test-webhook")
def test_webhook(
    url: str = typer.Argument(..., help="Receiver URL."),
    secret: str = typer.Option("", "--secret", envvar="FINPULSE_ALERTS_TEST_SECRET", help="Signing secret."),
    timeout_s: float = typer.Option(5.0, help="Request timeout."),
) -> None:
    """Send one signed sample alert (state firing) and print the response."""
    import httpx

    from alerts.delivery import RetryPolicy, WebhookSender
    from alerts.detector import AlertEvent, alert_id
    from alerts.settings import AlertSettings, WebhookEndpoint
    from alerts.worker import build_payload, dashboard_link

    start = datetime.now(UTC).replace(second=0, microsecond=0)
    event = AlertEvent(
        alert_id=alert_id("test-webhook", "market", "all", start), rule="test-webhook", key_kind="market",
        key="all", state="firing", severity="warning", window_start=start, window_end=start, decided_at=start,
        volume=42, negative=21, negative_share=0.5, baseline=0.18, z_score=5.3,
    )  # fmt: skip
    body = build_payload(event, "test", [], dashboard_link(AlertSettings().dashboard_url, "test", event))
    endpoint = WebhookEndpoint(url=url, secret=secret, timeout_s=timeout_s)
    with httpx.Client() as http:
        try:
            response = WebhookSender(http, RetryPolicy(max_attempts=1)).post_once(
                endpoint, body, event.idempotency_key
            )
        except httpx.HTTPError as exc:
            typer.echo(f"no response: {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"HTTP {response.status_code} {response.reason_phrase}")
    typer.echo(response.text[:2000])
    if not response.is_success:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
