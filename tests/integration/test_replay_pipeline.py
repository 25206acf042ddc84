"""Replay on real components: a live stream archived by the real worker, then replayed under a run id."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import typer
from typer.testing import CliRunner

from alerts.backtest_cli import backtest_command
from devstack.services import start_stream_worker, terminate
from finpulse.replay import replay_command, run_replay
from ingest.replay_source import KafkaRangeReader, ReplayError, TimeRange
from models.base import Prediction
from models.settings import ModelSettings
from storage.client import ClickHouseClient
from storage.queries import document_count
from storage.writer import BatchWriter, ClassifiedBatch
from stream_app.settings import StreamSettings
from tests.integration.pipeline import (
    kafka_settings,
    produce,
    synthetic_documents,
    wait_until,
    worker_env,
)

T0 = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
# synthetic_documents spaces documents 5 s apart: 240 documents = 20 minutes from T0
SUB_RANGE = TimeRange(T0 + timedelta(minutes=5), T0 + timedelta(minutes=12))


def _counts(client: ClickHouseClient, run_id: str) -> dict[str, int]:
    db = client.database
    ((market,),) = client.query(
        f"SELECT uniqExactMerge(documents) FROM {db}.sentiment_1m "
        "WHERE run_id = %(r)s AND key_kind = 'market'",
        {"r": run_id},
    )
    ((topic_volume,),) = client.query(
        f"SELECT sum(v) FROM (SELECT uniqExactMerge(stories) AS v FROM {db}.sentiment_1m "
        "WHERE run_id = %(r)s AND key_kind = 'topic' GROUP BY key, bucket)",
        {"r": run_id},
    )
    rows, distinct = document_count(client, run_id)
    return {"rows": rows, "distinct": distinct, "market_docs": market, "topic_stories": topic_volume}


def _doc_ids(client: ClickHouseClient, run_id: str) -> set[str]:
    rows = client.query(
        f"SELECT doc_id FROM {client.database}.classifications FINAL WHERE run_id = %(r)s", {"r": run_id}
    )
    return {r[0] for r in rows}


def test_archived_stream_replayed_under_new_run_id_only_and_idempotent(
    broker, clickhouse_settings, ch_client, tiny_model_dir, tmp_path
) -> None:
    kafka = kafka_settings(broker)
    docs = synthetic_documents(240, start=T0)
    produce(kafka, docs)
    worker = start_stream_worker(
        worker_env(kafka, clickhouse_settings, tiny_model_dir), tmp_path / "worker.log"
    )
    try:
        wait_until(lambda: document_count(ch_client, "live")[1] >= len(docs), 120, "live stream stored")
    finally:
        terminate(worker, grace_s=15)
    live_before = _counts(ch_client, "live")
    archived = ch_client.query(f"SELECT uniqExact(doc_id) FROM {ch_client.database}.documents")[0][0]
    assert archived == len(docs) and live_before["distinct"] == len(docs)
    expected = {d.doc_id for d in docs if d.published_at in SUB_RANGE}
    assert len(expected) == 84

    replay = dict(
        kafka=kafka, clickhouse=clickhouse_settings, model=ModelSettings(dir=tiny_model_dir),
        stream=StreamSettings(max_batch=64, max_wait_s=0.2), show_progress=False, drain_timeout_s=60,
    )  # fmt: skip
    first = run_replay(SUB_RANGE, "replay-a", source="clickhouse", **replay)
    assert (first.selected, first.published, first.stored) == (84, 84, 84)
    assert _doc_ids(ch_client, "replay-a") == expected
    after_first = _counts(ch_client, "replay-a")
    assert after_first["distinct"] == after_first["rows"] == after_first["market_docs"] == 84

    # the same range and run id again, this time from Kafka: nothing doubles, live is untouched
    second = run_replay(SUB_RANGE, "replay-a", source="kafka", **replay)
    assert (second.selected, second.published, second.stored) == (84, 84, 84)
    assert _counts(ch_client, "replay-a") == after_first
    assert _counts(ch_client, "live") == live_before
    run_ids = {
        r[0] for r in ch_client.query(f"SELECT DISTINCT run_id FROM {ch_client.database}.classifications")
    }
    assert run_ids == {"live", "replay-a"}
    # replays are not archived again: the archive still holds each document once
    assert ch_client.query(f"SELECT count() FROM {ch_client.database}.documents FINAL") == [(len(docs),)]

    # a run id holds one model's results: another model is refused before anything is published
    BatchWriter(ch_client, clickhouse_settings).write(
        ClassifiedBatch("replay-b", docs[:1], [Prediction("macro", 1, "neutral", 0, 1, 0)], "other-model")
    )
    with pytest.raises(ReplayError, match="already holds results of model other-model"):
        run_replay(SUB_RANGE, "replay-b", source="clickhouse", **replay)
    assert document_count(ch_client, "replay-b") == (1, 1)


def test_kafka_range_located_by_message_timestamps_with_disorder(broker) -> None:
    """Timestamps out of order within the disorder bound: every in-range document, in event-time order."""
    kafka = kafka_settings(broker)
    docs = synthetic_documents(400, start=T0)
    rng = random.Random(5)
    # publish in an order where each document is at most ~2 minutes late
    shuffled = sorted(docs, key=lambda d: d.published_at.timestamp() + rng.uniform(0, 120))
    produce(kafka, shuffled)
    span = TimeRange(T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))
    reader = KafkaRangeReader(kafka, [kafka.raw_topic], span, max_disorder=timedelta(minutes=3))
    found = reader.read()
    want = sorted((d for d in docs if d.published_at in span), key=lambda d: (d.published_at, d.doc_id))
    assert [d.doc_id for d in found] == [d.doc_id for d in want]
    # binary search and the early stop: far fewer messages scanned than the topic holds
    assert reader.stats.scanned < 0.6 * len(docs), reader.stats


def test_replay_and_backtest_commands_on_an_archive(
    clickhouse_settings, ch_client, tiny_model_dir, tmp_path, monkeypatch
) -> None:
    """The CLI composition roots: replay through a throwaway broker, then backtest the new run."""
    docs = synthetic_documents(120, start=T0)
    preds = [Prediction("macro", 1, "neutral", 0, 1, 0)] * len(docs)
    BatchWriter(ch_client, clickhouse_settings).write(ClassifiedBatch("live", docs, preds, "seed"))
    for name, value in {
        "FINPULSE_CLICKHOUSE_MODE": "server",
        "FINPULSE_CLICKHOUSE_PORT": str(clickhouse_settings.port),
        "FINPULSE_CLICKHOUSE_DATABASE": clickhouse_settings.database,
    }.items():
        monkeypatch.setenv(name, value)
    app = typer.Typer()
    app.command("replay")(replay_command)
    app.command("backtest")(backtest_command)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["replay", "--from", "2026-11-02T13:00Z", "--to", "2026-11-02T13:05Z", "--run-id", "cli-1",
         "--model", str(tiny_model_dir), "--embedded-broker"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "replayed 60 of 60 documents" in result.output and "stored 60" in result.output
    assert document_count(ch_client, "cli-1") == (60, 60)
    report = tmp_path / "report"
    result = runner.invoke(app, ["backtest", "--run-id", "cli-1", "--report", str(report)])
    assert result.exit_code == 0, result.output
    summary = orjson.loads((report / "summary.json").read_bytes())
    assert summary["run_id"] == "cli-1" and summary["range"]["start"] == "2026-11-02T13:00:00Z"
