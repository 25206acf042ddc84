"""`finpulse replay`: the composition root of a replay (source -> replay topic -> its own stream worker).

A replay with its own model needs its own stream worker, so by default this command runs one in
this process: the same Faust app (`stream_app.app.create_app`) with its own app id and consumer
group (`finpulse-replay-<run id>`), reading only the run's replay topic, classifying with `--model`
and storing under the run id. It publishes the range (in event-time order, paced or not) while
the worker consumes, and returns once the group has committed every published offset, i.e. every
replayed document is stored. `--no-worker` only publishes (for a standing `finpulse stream` worker
configured with `FINPULSE_STREAM_INPUT_TOPICS` and `FINPULSE_STREAM_APP_ID`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ingest.replay import ReplayError, TimeRange, parse_time, replay_topic_for, validate_run_id
from ingest.settings import KafkaSettings

if TYPE_CHECKING:
    from models.settings import ModelSettings
    from storage.settings import ClickHouseSettings
    from stream_app.settings import StreamSettings

log = logging.getLogger(__name__)
SOURCES = ("clickhouse", "kafka")


@dataclass
class ReplayResult:
    """What a replay did."""

    run_id: str
    topic: str
    selected: int
    published: int
    stored: int
    invalid: int
    seconds: float


def replay_group(run_id: str) -> str:
    """App id and consumer group of a run's replay worker (stable, so a rerun resumes the group)."""
    return f"finpulse-replay-{validate_run_id(run_id)}"


def run_replay(
    span: TimeRange,
    run_id: str,
    *,
    source: str,
    kafka: KafkaSettings,
    clickhouse: ClickHouseSettings,
    model: ModelSettings | None,
    stream: StreamSettings | None = None,
    topics: list[str] | None = None,
    speed: float | None = None,
    replay_topic: str | None = None,
    max_disorder: timedelta = timedelta(hours=1),
    drain_timeout_s: float = 600.0,
    show_progress: bool = True,
) -> ReplayResult:
    """Replay `span` from `source` under `run_id`; with `model`, classify and store it in-process."""
    from tqdm import tqdm

    from ingest.publisher import DocumentPublisher, ensure_topics
    from ingest.replay import KafkaRangeReader, Pacer, archive_count, archived_documents, publish_replay
    from storage.client import connect
    from storage.migrate import migrate

    if source not in SOURCES:
        raise ReplayError(f"--source must be one of {', '.join(SOURCES)}, not {source!r}")
    if topics and source != "kafka":
        raise ReplayError("--topics selects Kafka topics to read: use it with --source kafka")
    validate_run_id(run_id)
    topic = replay_topic or replay_topic_for(run_id)
    started = time.monotonic()
    pacer = Pacer(speed)
    client = connect(clickhouse)
    try:
        migrate(client, clickhouse.retention_days)
        invalid = 0
        if source == "clickhouse":
            selected = archive_count(client, span)
            docs = archived_documents(client, span)
        else:
            reader = KafkaRangeReader(kafka, topics or [kafka.raw_topic], span, max_disorder)
            with tqdm(desc="read kafka", unit="msg", disable=not show_progress) as bar:
                docs = reader.read(progress=bar.update)
            selected, invalid = len(docs), reader.stats.invalid
            for problem in reader.stats.problems:
                log.warning("skipped invalid message %s", problem)
        ensure_topics(kafka, [topic])
        publisher = DocumentPublisher(kafka, topic)
        try:
            with tqdm(total=selected, desc=f"publish {topic}", unit="doc", disable=not show_progress) as bar:

                def publish() -> int:
                    return publish_replay(docs, publisher, run_id, pacer, bar.update)

                if model is None:
                    published, stored = publish(), 0
                else:
                    published, stored = _with_worker(
                        publish, run_id, topic, kafka, clickhouse, client, model, stream,
                        drain_timeout_s, selected, show_progress,
                    )  # fmt: skip
        finally:
            publisher.close()
    finally:
        client.close()
    return ReplayResult(run_id, topic, selected, published, stored, invalid, time.monotonic() - started)


def _with_worker(
    publish, run_id, topic, kafka, clickhouse, client, model, stream, drain_timeout_s, expected, show_progress
) -> tuple[int, int]:
    """Run the replay's stream worker while `publish()` runs; return (published, stored)."""
    from models.runtime import load_classifier
    from storage.writer import BatchWriter
    from stream_app.app import create_app
    from stream_app.processor import BatchProcessor, BatchResult
    from stream_app.settings import StreamSettings

    group = replay_group(run_id)
    settings = (stream or StreamSettings()).model_copy(
        update={"app_id": group, "run_id": run_id, "input_topics": [topic], "web_port": None}
    )
    classifier = load_classifier(model)
    log.info("replay %s: model %s on %s", run_id, classifier.model_version, classifier.backend)
    processor = BatchProcessor(
        classifier, BatchWriter(client, clickhouse), run_id, f"replay-{socket.gethostname()}"
    )
    stored = [0]

    def count(result: BatchResult) -> None:
        stored[0] += result.stored + len(result.dead_letters)

    with tempfile.TemporaryDirectory(prefix="finpulse-replay-faust-") as datadir:
        app = create_app(settings, kafka, processor, Path(datadir), count)
        try:
            published = asyncio.run(
                _publish_and_drain(
                    app, publish, kafka, group, topic, stored, expected, drain_timeout_s, show_progress
                )
            )
        finally:
            processor.close()
    return published, stored[0]


async def _publish_and_drain(
    app, publish, kafka, group, topic, stored, expected, drain_timeout_s, show_progress
) -> int:
    """Start the worker, publish (in a thread), then wait until the group committed every offset."""
    from tqdm import tqdm

    from ingest.replay import committed_offsets, high_water_marks

    loop = asyncio.get_running_loop()
    await app.start()
    try:
        with tqdm(total=expected, desc="classify+store", unit="doc", disable=not show_progress) as bar:
            publishing = loop.run_in_executor(None, publish)
            while not publishing.done():
                bar.update(stored[0] - bar.n)
                await asyncio.sleep(0.2)
            published = await publishing
            marks = await loop.run_in_executor(None, high_water_marks, kafka, topic)
            deadline = time.monotonic() + drain_timeout_s
            while True:
                committed = await loop.run_in_executor(
                    None, committed_offsets, kafka, group, topic, list(marks)
                )
                bar.update(stored[0] - bar.n)
                if all(committed[p] >= mark for p, mark in marks.items()):
                    return published
                if time.monotonic() > deadline:
                    behind = sum(max(0, mark - committed[p]) for p, mark in marks.items())
                    raise ReplayError(
                        f"replay worker still {behind} messages behind after {drain_timeout_s:.0f}s"
                    )
                await asyncio.sleep(0.3)
    finally:
        await app.stop()


def replay_command(
    from_: str = typer.Option(..., "--from", help="Range start (event time), ISO-8601; naive = UTC."),
    to: str = typer.Option(..., "--to", help="Range end (exclusive), ISO-8601."),
    run_id: str = typer.Option(..., "--run-id", help="Run id the results are stored under (not 'live')."),
    source: str = typer.Option("clickhouse", "--source", help="clickhouse (the archive) or kafka."),
    topics: list[str] = typer.Option(
        None, "--topics", help="Kafka topics to read with --source kafka (default: the raw topic)."
    ),
    model: Path = typer.Option(
        None, "--model", help="Model directory for the replay's worker (default: FINPULSE_MODEL_DIR)."
    ),
    speed: float = typer.Option(
        0.0, "--speed", help="Event time per wall time: 60 = one hour per minute; 0 = as fast as possible."
    ),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Classify in this process (else only publish to the replay topic)."
    ),
    replay_topic: str = typer.Option(None, help="Topic to publish to (default: finpulse.replay.<run id>)."),
    max_disorder_s: float = typer.Option(
        3600.0, help="--source kafka: how far a message may be older than one written before it."
    ),
    drain_timeout_s: float = typer.Option(600.0, help="How long to wait for the worker after publishing."),
) -> None:
    """Replay a time range of history under a run id (settings from FINPULSE_* variables)."""
    from models.settings import ModelSettings
    from storage.settings import ClickHouseSettings
    from stream_app.settings import StreamSettings

    model_settings = None
    if worker:
        model_settings = ModelSettings()
        if model is not None:
            model_settings = model_settings.model_copy(update={"dir": model})
    try:
        span = TimeRange(parse_time(from_), parse_time(to))
        result = run_replay(
            span, run_id, source=source, kafka=KafkaSettings(), clickhouse=ClickHouseSettings(),
            model=model_settings, stream=StreamSettings(),
            topics=[t.strip() for item in topics or () for t in item.split(",") if t.strip()],
            speed=speed, replay_topic=replay_topic, max_disorder=timedelta(seconds=max_disorder_s),
            drain_timeout_s=drain_timeout_s,
        )  # fmt: skip
    except ReplayError as exc:
        typer.echo(f"replay: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"replayed {result.published} of {result.selected} documents "
        f"({span.start.isoformat()} .. {span.end.isoformat()}) to {result.topic} as run {run_id!r}"
        + (f"; stored {result.stored}" if worker else "; no worker (publish only)")
        + (f"; {result.invalid} invalid messages skipped" if result.invalid else "")
        + f" in {result.seconds:.1f}s"
    )


if __name__ == "__main__":
    typer.run(replay_command)
