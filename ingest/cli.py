"""`finpulse ingest ...`: file, RSS and HTTP sources publishing to Kafka (each a composition root)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from ingest.topics import KafkaSettings

app = typer.Typer(
    help="Publish documents to Kafka from files, feeds or an HTTP endpoint.", no_args_is_help=True
)
log = logging.getLogger(__name__)


def publish_file(
    path: Path, source: str, kind: str, kafka: KafkaSettings, show_progress: bool = True
) -> tuple[int, list[str]]:
    """Publish every valid record of a JSONL/CSV file; return (published, problems)."""
    from tqdm import tqdm

    from ingest.publisher import DocumentPublisher, ensure_topics
    from ingest.records import read_records, to_document
    from ingest.schema import DocumentError

    ensure_topics(kafka)
    publisher = DocumentPublisher(kafka)
    problems: list[str] = []
    try:
        batch = []
        for number, record in enumerate(
            tqdm(read_records(path), desc=f"ingest {path.name}", unit="doc", disable=not show_progress),
            start=1,
        ):
            try:
                batch.append(to_document(record, default_source=source, default_kind=kind))
            except DocumentError as exc:
                problems.append(f"{path}:{number}: {exc}")
            if len(batch) >= 500:
                publisher.publish(batch)
                batch = []
        publisher.publish(batch)
        publisher.flush()
        return publisher.sent, problems
    finally:
        publisher.close()


@app.command("file")
def file_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL or CSV file"),
    source: str = typer.Option("file", help="source name for records without one"),
    kind: str = typer.Option("news", help="news or social, for records without one"),
) -> None:
    """Publish a JSONL or CSV file of documents."""
    sent, problems = publish_file(path, source, kind, KafkaSettings())
    for problem in problems[:20]:
        typer.echo(f"skipped {problem}", err=True)
    typer.echo(f"published {sent} documents to Kafka ({len(problems)} invalid records skipped)")


@app.command("rss")
def rss_command(
    location: list[str] = typer.Argument(..., help="feed URL(s) or file path(s)"),
    once: bool = typer.Option(False, help="poll once and exit"),
    interval: float = typer.Option(None, help="seconds between polls (default from settings)"),
) -> None:
    """Poll RSS/Atom feeds and publish new items only."""
    from ingest.publisher import DocumentPublisher, ensure_topics
    from ingest.rss import FeedPoller
    from ingest.schema import DocumentError
    from ingest.settings import IngestSettings

    settings, kafka = IngestSettings(), KafkaSettings()
    ensure_topics(kafka)
    pollers = [FeedPoller(loc, settings.state_dir) for loc in location]
    publisher = DocumentPublisher(kafka)
    try:
        while True:
            for poller in pollers:
                try:
                    fresh = poller.poll()
                except DocumentError as exc:
                    typer.echo(str(exc), err=True)
                    continue
                publisher.publish(fresh)
                publisher.flush()
                poller.commit()
                typer.echo(f"{poller.location}: {len(fresh)} new items")
            if once:
                return
            time.sleep(interval or settings.rss_poll_interval_s)
    finally:
        publisher.close()


@app.command("serve")
def serve_command(
    host: str = typer.Option(None, help="bind address (default from FINPULSE_INGEST_HTTP_HOST)"),
    port: int = typer.Option(None, help="port (default from FINPULSE_INGEST_HTTP_PORT)"),
) -> None:
    """Serve `POST /v1/docs` (bearer token from FINPULSE_INGEST_API_TOKEN), `/healthz` and `/readyz`."""
    import uvicorn
    from kafka.errors import KafkaError

    from ingest.http_api import IngestConfigError, create_app
    from ingest.publisher import DocumentPublisher, ensure_topics
    from ingest.settings import IngestSettings

    settings, kafka = IngestSettings(), KafkaSettings()
    publisher = DocumentPublisher(kafka)

    def publish(docs) -> None:
        publisher.publish(docs)
        publisher.flush(settings.publish_timeout_s)

    try:
        app = create_app(settings, publish, publisher.check)
    except IngestConfigError as exc:
        publisher.close()
        typer.echo(f"ingest serve: {exc}", err=True)
        raise typer.Exit(2) from exc
    if settings.allow_anonymous and not settings.api_token.get_secret_value():
        typer.echo("warning: development mode, the endpoint accepts anyone", err=True)
    try:
        ensure_topics(kafka)
    except KafkaError as exc:  # serve anyway: /readyz says 503 and posts get 503 until the broker is back
        typer.echo(f"warning: cannot create topics now ({exc}); starting unready", err=True)
    try:
        uvicorn.run(app, host=host or settings.http_host, port=port or settings.http_port)
    finally:
        publisher.close()
