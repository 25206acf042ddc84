"""Read queries used by the alert worker, the demo summary, replay and dashboards.

Every count is exact under redelivery: rollups use exact-distinct states, raw reads use FINAL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ingest.schema import Document
from storage.client import ClickHouseClient

KEY_KINDS = ("market", "topic", "ticker")


BucketRow = tuple[str, str, datetime, int, int, int, float, int]
"""(key_kind, key, bucket start, volume, negative, documents, mean score, confidently negative):
`alerts.detector.BucketStats`."""


def bucket_rows(
    client: ClickHouseClient,
    run_id: str,
    start: datetime,
    end: datetime,
    bucket_s: int = 60,
    key_kinds: tuple[str, ...] = KEY_KINDS,
) -> list[BucketRow]:
    """Per-key bucket aggregates with start in [start, end), ordered by key then time.

    `bucket_s` must be a multiple of 60 (the rollups' grain). Volume and negative counts are
    distinct stories (novelty key), so reprints and redeliveries count once. The last field counts
    the stories called negative with confidence >= 0.6 (rollup `confidence_1m`).
    """
    if bucket_s % 60:
        raise ValueError("bucket_s must be a multiple of 60 seconds")
    params = {"run_id": run_id, "kinds": tuple(key_kinds), "start": start, "end": end, "bucket_s": bucket_s}
    where = "run_id = %(run_id)s AND key_kind IN %(kinds)s AND bucket >= %(start)s AND bucket < %(end)s"
    bucket = "toDateTime(intDiv(toUInt32(bucket), %(bucket_s)s) * %(bucket_s)s, 'UTC') AS b"
    rows = client.query(
        f"""
        SELECT key_kind, key, {bucket},
               uniqExactMerge(stories), uniqExactIfMerge(negative_stories), uniqExactMerge(documents),
               groupUniqArrayMerge(doc_scores) AS scores
        FROM {client.database}.sentiment_1m WHERE {where}
        GROUP BY key_kind, key, b
        ORDER BY key_kind, key, b
        """,
        params,
    )
    confident = {
        (kind, key, b): count
        for kind, key, b, count in client.query(
            f"""
            SELECT key_kind, key, {bucket}, uniqExactIfMerge(confident_negative_stories)
            FROM {client.database}.confidence_1m WHERE {where}
            GROUP BY key_kind, key, b
            """,
            params,
        )
    }
    return [
        (
            kind,
            key,
            b,
            volume,
            negative,
            docs,
            _mean(score for _, score in scores),
            confident.get((kind, key, b), 0),
        )
        for kind, key, b, volume, negative, docs, scores in rows
    ]


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def document_count(client: ClickHouseClient, run_id: str) -> tuple[int, int]:
    """(rows stored, distinct documents) for a run: equal when nothing was stored twice after merge."""
    ((total, distinct),) = client.query(
        f"SELECT count(), uniqExact(doc_id) FROM {client.database}.classifications FINAL "
        "WHERE run_id = %(r)s",
        {"r": run_id},
    )
    return int(total), int(distinct)


def sentiment_by_topic(client: ClickHouseClient, run_id: str) -> list[tuple[str, int, int, int, int, float]]:
    """(topic, documents, negative, neutral, positive, mean score) per topic, largest first."""
    return client.query(
        f"""
        SELECT topic, count() AS n, countIf(sentiment = 'negative'), countIf(sentiment = 'neutral'),
               countIf(sentiment = 'positive'), avg(score)
        FROM {client.database}.classifications FINAL
        WHERE run_id = %(r)s
        GROUP BY topic ORDER BY n DESC
        """,
        {"r": run_id},
    )


@dataclass(frozen=True, slots=True)
class DocumentSample:
    doc_id: str
    published_at: datetime
    source: str
    title: str
    url: str
    score: float


def most_negative(
    client: ClickHouseClient,
    run_id: str,
    key_kind: str,
    key: str,
    start: datetime,
    end: datetime,
    limit: int = 5,
) -> list[DocumentSample]:
    """The most negative documents for a key in [start, end), one per story."""
    where = {"market": "1", "topic": "topic = %(key)s", "ticker": "has(tickers, %(key)s)"}[key_kind]
    rows = client.query(
        f"""
        SELECT doc_id, published_at, source, title, url, score
        FROM {client.database}.classifications FINAL
        WHERE run_id = %(r)s AND published_at >= %(start)s AND published_at < %(end)s AND {where}
        ORDER BY score ASC, doc_id
        LIMIT 1 BY story_id
        LIMIT %(limit)s
        """,
        {"r": run_id, "key": key, "start": start, "end": end, "limit": limit},
    )
    return [DocumentSample(*row) for row in rows]


_ARCHIVE_COLUMNS = (
    "doc_id, story_id, source, kind, published_at, ingested_at, title, text, url, lang, tickers, meta"
)


def _archived(row: tuple) -> Document:
    doc_id, story_id, source, kind, published, ingested, title, text, url, lang, tickers, meta = row
    return Document(
        doc_id=doc_id, story_id=story_id, source=source, kind=kind, published_at=published,
        ingested_at=ingested, title=title, text=text, url=url, lang=lang, tickers=tuple(tickers),
        meta=orjson.loads(meta) if meta else {},
    )  # fmt: skip


def archive_count(client: ClickHouseClient, start: datetime, end: datetime) -> int:
    """Distinct archived documents with published_at in [start, end)."""
    ((count,),) = client.query(
        f"SELECT uniqExact(doc_id) FROM {client.database}.documents "
        "WHERE published_at >= %(start)s AND published_at < %(end)s",
        {"start": start, "end": end},
    )
    return int(count)


def archived_documents(
    client: ClickHouseClient, start: datetime, end: datetime, page_size: int = 5_000
) -> Iterator[Document]:
    """Archived documents in [start, end), in (published_at, doc_id) order, read page by page (keyset)."""
    after: tuple[datetime, str] | None = None
    while True:
        params: dict[str, Any] = {"start": start, "end": end, "limit": page_size}
        keyset = ""
        if after is not None:
            keyset = "AND (published_at > %(t)s OR (published_at = %(t)s AND doc_id > %(id)s))"
            params.update(t=after[0], id=after[1])
        rows = client.query(
            f"SELECT {_ARCHIVE_COLUMNS} FROM {client.database}.documents FINAL "
            f"WHERE published_at >= %(start)s AND published_at < %(end)s {keyset} "
            "ORDER BY published_at, doc_id LIMIT %(limit)s",
            params,
        )
        for row in rows:
            yield _archived(row)
        if len(rows) < page_size:
            return
        after = (rows[-1][4], rows[-1][0])
