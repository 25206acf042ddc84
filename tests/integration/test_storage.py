"""Storage against a real ClickHouse server (18.16) and embedded chDB: same schema, exact counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.buckets import bucket_series
from ingest.schema import Document, make_doc_id
from models.base import Prediction
from storage.client import ClickHouseClient, connect
from storage.migrate import available_migrations, has_access_management, migrate
from storage.queries import document_count, most_negative, sentiment_by_topic
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter, ClassifiedBatch

T0 = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)


def _batch(n: int = 20) -> ClassifiedBatch:
    docs, preds = [], []
    for i in range(n):
        title = f"Headline {i // 2}"  # pairs of reprints share a story
        docs.append(
            Document(
                doc_id=make_doc_id("wire", str(i), title),
                source="wire",
                published_at=T0 + timedelta(seconds=20 * i),
                title=title,
                tickers=("ACME",) if i % 3 == 0 else (),
            )
        )
        negative = i % 4 == 0
        sure = 0.5 if i in (0, 1) else 0.8  # documents 0 and 1 (story 0, a negative one) are unsure calls
        preds.append(
            Prediction(
                topic="earnings" if i % 2 else "markets",
                topic_prob=0.9,
                sentiment="negative" if negative else "neutral",
                p_negative=sure if negative else 0.1,
                p_neutral=(1 - sure) / 2 if negative else sure,
                p_positive=(1 - sure) / 2 if negative else 1 - sure - 0.1,
            )
        )
    return ClassifiedBatch(run_id="live", documents=docs, predictions=preds, model_version="m1")


def _exercise(client: ClickHouseClient, settings: ClickHouseSettings) -> None:
    writer = BatchWriter(client, settings)
    batch = _batch()
    writer.write(batch)
    writer.write(batch)  # redelivery
    assert document_count(client, "live") == (20, 20)
    series = bucket_series(client, "live", T0, T0 + timedelta(hours=1), bucket_s=60)
    market = [b for b in series if b.key_kind == "market"]
    assert sum(b.documents for b in market) == 20
    # ten stories; stories 1, 4 and 7 straddle a minute boundary so count in two buckets
    assert sum(b.volume for b in market) == 13
    assert sum(b.negative for b in market) == 5
    assert sum(b.confident_negative for b in market) == 4  # story 0's negative calls are unsure
    five = bucket_series(client, "live", T0, T0 + timedelta(hours=1), bucket_s=300, key_kinds=("market",))
    assert len(five) == 2 and sum(b.documents for b in five) == 20
    ticker = [b for b in series if b.key_kind == "ticker"]
    assert {b.key for b in ticker} == {"ACME"} and sum(b.documents for b in ticker) == 7
    topics = {row[0]: row[1] for row in sentiment_by_topic(client, "live")}
    assert topics == {"earnings": 10, "markets": 10}
    sample = most_negative(client, "live", "market", "all", T0, T0 + timedelta(hours=1), limit=3)
    assert len(sample) == 3 and len({s.title for s in sample}) == 3
    db = settings.database
    [(mean, unsure, confident)] = client.query(
        "SELECT avgMerge(mean_confidence), uniqExactIfMerge(unsure_documents), "
        f"uniqExactIfMerge(confident_negative_stories) FROM {db}.confidence_1m "
        "WHERE run_id = 'live' AND key_kind = 'market'"
    )
    assert unsure == 2 and confident == 4  # negative stories 0, 2, 4, 6, 8; story 0 is unsure
    assert abs(mean - (18 * 0.8 + 2 * 0.5) / 20) < 1e-3 * 2  # a redelivery repeats rows at the same mean
    assert not migrate(client), "a second migrate applies nothing"


def _schema_versions() -> list[int]:
    return [m.version for m in available_migrations() if not m.requires_access_management]


def test_roles_migration_is_skipped_on_18_16_and_retried_later(ch_client: ClickHouseClient) -> None:
    assert any(m.requires_access_management for m in available_migrations())
    assert not has_access_management(ch_client)
    recorded = [v for (v,) in ch_client.query(f"SELECT version FROM {ch_client.database}.schema_migrations")]
    assert sorted(recorded) == _schema_versions()  # not recorded: an upgraded server applies it
    assert migrate(ch_client) == []


def test_server_schema_and_exact_counts(ch_client: ClickHouseClient, clickhouse_settings) -> None:
    assert ch_client.server_version()[0] == 18
    _exercise(ch_client, clickhouse_settings)


def test_embedded_chdb_same_schema(tmp_path: Path) -> None:
    settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path / "chdb")
    client = connect(settings)
    try:
        # no SQL access management in chDB: the roles migration is skipped, the schema is complete
        assert [m.version for m in migrate(client)] == _schema_versions()
        assert not has_access_management(client)
        assert client.server_version()[0] >= 23
        _exercise(client, settings)
    finally:
        client.close()


def test_unreachable_server_raises_after_bounded_retries() -> None:
    from devstack.services import free_port
    from storage.writer import StorageUnavailable

    settings = ClickHouseSettings(mode="server", port=free_port(), insert_attempts=3, insert_backoff_s=0.01)
    pauses: list[float] = []
    writer = BatchWriter(connect(settings), settings, sleep=pauses.append)
    with pytest.raises(StorageUnavailable, match="failed 3 times"):
        writer.write(_batch(2))
    assert len(pauses) == 2


def _poisoned(n: int = 20) -> tuple[ClassifiedBatch, dict[int, str]]:
    """A batch with documents ClickHouse cannot hold, built past the Document checks (as old data,
    another producer or a future bug could): index -> what the rejection reason must mention."""
    batch = _batch(n)
    docs = list(batch.documents)
    docs[3] = docs[3].model_copy(update={"published_at": datetime(2200, 1, 1, tzinfo=UTC)})
    docs[8] = docs[8].model_copy(update={"published_at": datetime(1900, 1, 1, tzinfo=UTC)})
    docs[13] = docs[13].model_copy(update={"title": "bad \ud800 surrogate"})
    batch.documents = docs
    return batch, {3: "published_at", 8: "published_at", 13: "storage rejected"}


@pytest.mark.parametrize("mode", ["server", "embedded"])
def test_poison_rows_are_rejected_with_reasons_and_the_rest_stored(
    mode: str, clickhouse_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    settings = clickhouse_settings
    if mode == "embedded":
        settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path / "chdb", insert_backoff_s=0.01)
    client = connect(settings)
    try:
        migrate(client)
        batch, expected = _poisoned()
        result = BatchWriter(client, settings).write(batch)
        assert sorted(result.rejected) == sorted(expected)
        assert all(expected[i] in reason for i, reason in result.rejected.items())
        assert document_count(client, "live") == (17, 17)
        # nothing clamped into range: every stored time is one of the batch's own
        times = {r[0] for r in client.query(f"SELECT DISTINCT published_at FROM {client.database}.documents")}
        assert {t.replace(tzinfo=UTC) for t in times} <= {d.published_at for d in batch.documents}
        (metrics,) = client.query(f"SELECT batch_size, invalid FROM {client.database}.pipeline_batches")
        assert metrics == (17, 3)
    finally:
        client.close()


def test_archive_replays_older_than_49_days_store_a_saturated_latency(
    ch_client: ClickHouseClient, clickhouse_settings: ClickHouseSettings
) -> None:
    batch = _batch(4)
    old = datetime.now(UTC) - timedelta(days=60)
    batch.documents = [d.model_copy(update={"ingested_at": old}) for d in batch.documents]
    result = BatchWriter(ch_client, clickhouse_settings).write(batch)
    assert result.rejected == {}
    latencies = ch_client.query(
        f"SELECT DISTINCT pipeline_latency_ms FROM {ch_client.database}.classifications"
    )
    assert latencies == [(2**32 - 1,)]


def test_batch_reclassified_on_redelivery_dashboards_show_the_last_label_rollups_any(
    ch_client: ClickHouseClient, clickhouse_settings: ClickHouseSettings
) -> None:
    """The documented limit: a batch redelivered after a crash and classified differently (a new
    model between crash and restart) is shown with its last label by the `FINAL` reads, while the
    rollups behind alerts count a story negative when any stored version was."""
    import time

    first = _batch(4)
    writer = BatchWriter(ch_client, clickhouse_settings)
    writer.write(first)
    time.sleep(1.1)  # stored_at (seconds) orders the versions
    neutral = [p.__class__("markets", 0.9, "neutral", 0.1, 0.8, 0.1) for p in first.predictions]
    writer.write(ClassifiedBatch("live", first.documents, neutral, "m2"))
    final = ch_client.query(
        f"SELECT countIf(sentiment = 'negative'), count() FROM {ch_client.database}.classifications FINAL"
    )
    assert final == [(0, 4)]
    (rollup,) = ch_client.query(
        f"SELECT uniqExactIfMerge(negative_stories) FROM {ch_client.database}.sentiment_1m "
        "WHERE key_kind = 'market'"
    )
    assert rollup == (1,)  # story 0 (index 0 negative under m1) still counts once
