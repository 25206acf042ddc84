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
import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ingest.replay_source import ReplayError, TimeRange, parse_time, replay_topic_for, validate_run_id
from ingest.topics import KafkaSettings

if TYPE_CHECKING:
    from models.settings import ModelSettings
    from storage.client import ClickHouseClient
    from storage.settings import ClickHouseSettings
    from stream_app.processor import BatchResult
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
    from ingest.replay_source import KafkaRangeReader, Pacer, publish_replay
    from storage.client import connect
    from storage.migrate import migrate
    from storage.queries import archive_count, archived_documents

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
            selected = archive_count(client, span.start, span.end)
            docs = archived_documents(client, span.start, span.end)
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
                    worker = ReplayWorker(run_id, topic, kafka, clickhouse, client, model, stream)
                    try:
                        published = worker.run(publish, selected, drain_timeout_s, show_progress)
                    finally:
                        worker.close()
                    stored = worker.stored
        finally:
            publisher.close()
    finally:
        client.close()
    return ReplayResult(run_id, topic, selected, published, stored, invalid, time.monotonic() - started)


class ReplayWorker:
    """The replay's own stream worker: `create_app` with the group `finpulse-replay-<run id>`, reading
    only the replay topic, classifying with the replay's model and storing under its run id.

    Lifecycle: `ReplayWorker(...)` (loads the model) -> `run(publish, ...)` -> `close()`.
    """

    def __init__(
        self,
        run_id: str,
        topic: str,
        kafka: KafkaSettings,
        clickhouse: ClickHouseSettings,
        client: ClickHouseClient,
        model: ModelSettings,
        stream: StreamSettings | None,
    ) -> None:
        from models.runtime import load_classifier
        from storage.writer import BatchWriter
        from stream_app.processor import BatchProcessor
        from stream_app.settings import StreamSettings

        self.group = replay_group(run_id)
        self.topic = topic
        self.stored = 0
        self._kafka = kafka
        self._stream = (stream or StreamSettings()).model_copy(
            update={"app_id": self.group, "run_id": run_id, "input_topics": [topic], "web_port": None}
        )
        classifier = load_classifier(model)
        log.info("replay %s: model %s on %s", run_id, classifier.model_version, classifier.backend)
        others = _other_models(client, run_id, classifier.model_version)
        if others:
            classifier.close()
            # the rollups merge every row ever written for a run: two models would blend
            raise ReplayError(
                f"run {run_id!r} already holds results of model {', '.join(others)}; "
                f"this model is {classifier.model_version}: use a new run id"
            )
        worker = f"replay-{socket.gethostname()}-{os.getpid()}"
        self._processor = BatchProcessor(classifier, BatchWriter(client, clickhouse), run_id, worker)

    def run(
        self, publish: Callable[[], int], expected: int, drain_timeout_s: float, show_progress: bool
    ) -> int:
        """Start the worker, run `publish()` in a thread, wait until every published offset is
        committed by the group (so stored), stop; returns what `publish` returned."""
        from stream_app.app import create_app

        with tempfile.TemporaryDirectory(prefix="finpulse-replay-faust-") as datadir:
            app = create_app(self._stream, self._kafka, self._processor, Path(datadir), self._count)
            return asyncio.run(self._run(app, publish, expected, drain_timeout_s, show_progress))

    def _count(self, result: BatchResult) -> None:
        self.stored += result.stored + len(result.dead_letters)

    async def _run(self, app, publish, expected: int, drain_timeout_s: float, show_progress: bool) -> int:
        from tqdm import tqdm

        from ingest.replay_source import committed_offsets, high_water_marks

        loop = asyncio.get_running_loop()
        await app.start()
        try:
            with tqdm(total=expected, desc="classify+store", unit="doc", disable=not show_progress) as bar:
                publishing = loop.run_in_executor(None, publish)
                while not publishing.done():
                    bar.update(self.stored - bar.n)
                    await asyncio.sleep(0.2)
                published = await publishing
                marks = await loop.run_in_executor(None, high_water_marks, self._kafka, self.topic)
                deadline = time.monotonic() + drain_timeout_s
                while True:
                    committed = await loop.run_in_executor(
                        None, committed_offsets, self._kafka, self.group, self.topic, list(marks)
                    )
                    bar.update(self.stored - bar.n)
                    behind = sum(max(0, mark - committed[p]) for p, mark in marks.items())
                    if not behind:
                        return published
                    if time.monotonic() > deadline:
                        raise ReplayError(
                            f"replay worker still {behind} messages behind after {drain_timeout_s:.0f}s"
                        )
                    await asyncio.sleep(0.3)
        finally:
            await app.stop()

    def close(self) -> None:
        """Release the model."""
        self._processor.close()


def _other_models(client: ClickHouseClient, run_id: str, model_version: str) -> list[str]:
    rows = client.query(
        f"SELECT DISTINCT model_version FROM {client.database}.classifications "
        "WHERE run_id = %(r)s AND model_version != %(m)s",
        {"r": run_id, "m": model_version},
    )
    return sorted(r[0] for r in rows)


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
    embedded_broker: bool = typer.Option(
        False, help="Use a throwaway in-process Tansu broker (with --source clickhouse and the worker)."
    ),
) -> None:
    """Replay a time range of history under a run id (settings from FINPULSE_* variables)."""
    from kafka.errors import KafkaError

    from ingest.publisher import PublishError
    from models.settings import ModelSettings
    from storage.client import StorageError
    from storage.settings import ClickHouseSettings
    from stream_app.settings import StreamSettings

    model_settings = None
    if worker:
        model_settings = ModelSettings()
        if model is not None:
            model_settings = model_settings.model_copy(update={"dir": model})
    if embedded_broker and (source != "clickhouse" or not worker):
        raise typer.BadParameter("--embedded-broker needs --source clickhouse and the in-process worker")
    try:
        span = TimeRange(parse_time(from_), parse_time(to))
        with contextlib.ExitStack() as stack:
            kafka = KafkaSettings()
            if embedded_broker:
                from devstack.services import TansuBroker

                kafka = stack.enter_context(TansuBroker()).kafka_settings(kafka)
            result = run_replay(
                span, run_id, source=source, kafka=kafka, clickhouse=ClickHouseSettings(),
                model=model_settings, stream=StreamSettings(),
                topics=[t.strip() for item in topics or () for t in item.split(",") if t.strip()],
                speed=speed, replay_topic=replay_topic, max_disorder=timedelta(seconds=max_disorder_s),
                drain_timeout_s=drain_timeout_s,
            )  # fmt: skip
    except ReplayError as exc:
        typer.echo(f"replay: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (KafkaError, PublishError) as exc:
        typer.echo(f"replay: Kafka at {kafka.bootstrap} unavailable: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except StorageError as exc:
        typer.echo(f"replay: ClickHouse unavailable: {exc}", err=True)
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
