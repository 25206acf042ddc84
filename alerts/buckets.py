"""The detector's input read from storage: the `sentiment_1m` rollup as `BucketStats` per key."""

from __future__ import annotations

from datetime import datetime

from alerts.detector import BucketStats
from storage.client import ClickHouseClient
from storage.queries import KEY_KINDS, bucket_rows


def bucket_series(
    client: ClickHouseClient,
    run_id: str,
    start: datetime,
    end: datetime,
    bucket_s: int = 60,
    key_kinds: tuple[str, ...] = KEY_KINDS,
) -> list[BucketStats]:
    """Per-key buckets with start in [start, end), ordered by key then time (see `bucket_rows`)."""
    return [BucketStats(*row) for row in bucket_rows(client, run_id, start, end, bucket_s, key_kinds)]
