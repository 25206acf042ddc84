"""Storage against a real ClickHouse server (18.16) and embedded chDB: same schema, exact counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.schema import Document, make_doc_id
from models.base import Prediction
from storage.client import ClickHouseClient, connect
from storage.migrate import available_migrations, migrate
from storage.queries import bucket_series, document_count, most_negative, sentiment_by_topic
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


def test_server_schema_and_exact_counts(ch_client: ClickHouseClient, clickhouse_settings) -> None:
    assert ch_client.server_version()[0] == 18
    _exercise(ch_client, clickhouse_settings)


def test_embedded_chdb_same_schema(tmp_path: Path) -> None:
    settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path / "chdb")
    client = connect(settings)
    try:
        assert [m.version for m in migrate(client)] == [m.version for m in available_migrations()]
        assert client.server_version()[0] >= 23
        _exercise(client, settings)
    finally:
        client.close()


def test_unreachable_server_raises_after_bounded_retries() -> None:
    from finpulse.local_services import free_port
    from storage.writer import StorageUnavailable

    settings = ClickHouseSettings(mode="server", port=free_port(), insert_attempts=3, insert_backoff_s=0.01)
    pauses: list[float] = []
    writer = BatchWriter(connect(settings), settings, sleep=pauses.append)
    with pytest.raises(StorageUnavailable, match="failed 3 times"):
        writer.write(_batch(2))
    assert len(pauses) == 2
