"""`finpulse demo`: the whole pipeline in one process on embedded components.

Tansu (Kafka protocol, memory) + the Faust stream app + the trained model + chDB + the alert worker
delivering signed webhooks to a local receiver, then a summary and a PNG report. Runs again on the
same data directory without double counting: storage is idempotent and the alert outbox remembers.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path

import typer

from models.settings import ModelSettings
from storage.settings import ClickHouseSettings
from stream_app.settings import StreamSettings

DEMO_SECRET = "demo-secret"


@dataclass
class DemoResult:
    documents: int
    invalid: int
    seconds: float
    alerts: int
    webhooks_delivered: int
    report: Path | None

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def default_feed() -> Path:
    return Path(str(resources.files("ingest") / "samples" / "demo_feed.jsonl"))


def _model_settings(model_dir: Path) -> ModelSettings:
    settings = ModelSettings(dir=model_dir)
    if not (model_dir / "finpulse_model.json").exists():
        raise typer.BadParameter(
            f"no trained model in {model_dir}: run `finpulse model train && finpulse model export` "
            "(or `make demo`, which does it when the model is absent)",
            param_hint="--model-dir",
        )
    return settings


async def _stream_until_stored(app, expected: int, stored: list[int], timeout_s: float) -> None:
    from tqdm import tqdm

    await app.start()
    try:
        with tqdm(total=expected, desc="classify+store", unit="doc") as bar:
            deadline = time.monotonic() + timeout_s
            while stored[0] < expected:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"only {stored[0]} of {expected} documents stored after {timeout_s:.0f}s"
                    )
                await asyncio.sleep(0.2)
                bar.update(stored[0] - bar.n)
    finally:
        await app.stop()


def run_demo(feed: Path, model: ModelSettings, data_dir: Path, timeout_s: float = 600.0) -> DemoResult:
    """Run the embedded pipeline over `feed` and return what happened."""
    from alerts.receiver import WebhookReceiver
    from alerts.rules import load_rules
    from alerts.settings import AlertSettings, WebhookEndpoint
    from alerts.worker import AlertWorker
    from dashboards.report import render_report
    from devstack.services import TansuBroker
    from ingest.cli import publish_file
    from models.runtime import load_classifier
    from storage.client import connect
    from storage.migrate import migrate
    from storage.writer import BatchWriter
    from stream_app.app import create_app
    from stream_app.processor import BatchProcessor, BatchResult

    clickhouse = ClickHouseSettings(mode="embedded", embedded_path=data_dir / "chdb")
    client = connect(clickhouse)
    migrate(client)
    classifier = load_classifier(model)
    typer.echo(f"model {classifier.model_version} on {classifier.backend}")
    receiver = WebhookReceiver(DEMO_SECRET)
    with TansuBroker() as broker:
        kafka = broker.kafka_settings()
        started = time.monotonic()
        published, problems = publish_file(feed, source="demo", kind="news", kafka=kafka)
        stored = [0]
        invalid = [0]

        def count(result: BatchResult) -> None:
            stored[0] += result.stored
            invalid[0] += len(result.dead_letters)

        processor = BatchProcessor(classifier, BatchWriter(client, clickhouse), "live", "demo")
        stream = StreamSettings(app_id="finpulse-demo", max_batch=64, max_wait_s=0.2)
        app = create_app(stream, kafka, processor, Path(tempfile.mkdtemp(prefix="finpulse-faust-")), count)
        asyncio.run(_stream_until_stored(app, published, stored, timeout_s))
        seconds = time.monotonic() - started
    receiver.start()
    try:
        alert_settings = AlertSettings(webhooks=[WebhookEndpoint(url=receiver.url, secret=DEMO_SECRET)])
        worker = AlertWorker(alert_settings, client)
        worker.setup()
        newest = client.query(f"SELECT max(published_at) FROM {client.database}.classifications")[0][0]
        worker.run_once(watermark=newest + timedelta(hours=1))
        worker.close()
    finally:
        receiver.stop()
    alerts = client.query(f"SELECT count() FROM {client.database}.alerts FINAL WHERE run_id = 'live'")[0][0]
    report = render_report(client, "live", data_dir / "report.png", load_rules(alert_settings.rules_path))
    _print_summary(client)
    classifier.close()
    client.close()
    for problem in problems[:5]:
        typer.echo(f"skipped {problem}", err=True)
    return DemoResult(published, invalid[0] + len(problems), seconds, alerts, len(receiver.accepted), report)


def _print_summary(client) -> None:
    from storage.queries import document_count, sentiment_by_topic

    rows, distinct = document_count(client, "live")
    typer.echo(f"\nstored documents: {distinct} (rows after dedup: {rows})")
    typer.echo(f"{'topic':<22}{'docs':>6}{'neg':>6}{'neu':>6}{'pos':>6}{'mean score':>12}")
    for topic, n, neg, neu, pos, mean in sentiment_by_topic(client, "live"):
        typer.echo(f"{topic:<22}{n:>6}{neg:>6}{neu:>6}{pos:>6}{mean:>12.3f}")
    events = client.query(
        f"""
        SELECT state, severity, key_kind, key, window_start, volume, negative, round(negative_share, 2)
        FROM {client.database}.alerts FINAL WHERE run_id = 'live' ORDER BY window_start, state
        """
    )
    typer.echo(f"\nalert events: {len(events)}")
    for state, severity, kind, key, start, volume, negative, share in events:
        typer.echo(
            f"  {state:<9}{severity:<9}{kind}:{key:<22}{start:%Y-%m-%d %H:%M}Z "
            f"volume={volume} negative={negative} share={share}"
        )


def demo_command(
    feed: Path = typer.Option(None, exists=True, dir_okay=False, help="JSONL feed (default: bundled sample)"),
    model_dir: Path = typer.Option(Path("var/model"), help="trained model directory"),
    data_dir: Path = typer.Option(Path("var/demo"), help="embedded ClickHouse data and the report"),
) -> None:
    """Run the embedded end-to-end demo (Tansu + Faust + model + chDB + alerts) and print a summary."""
    result = run_demo(feed or default_feed(), _model_settings(model_dir), data_dir)
    typer.echo(
        f"\nend to end: {result.documents} documents in {result.seconds:.1f}s "
        f"= {result.docs_per_s:.0f} docs/s "
        f"(publish -> classified and stored; {result.invalid} invalid)"
    )
    typer.echo(
        f"alerts stored: {result.alerts}; webhooks delivered (signed, verified): {result.webhooks_delivered}"
    )
    if result.report:
        typer.echo(f"report: {result.report}")
