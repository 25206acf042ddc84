"""Every panel's SQL, written once for Grafana, the SQL check and the PNG report.

Templates use `{db}` (the ClickHouse database), the grafana-clickhouse-datasource macros
(`$__timeFilter(col)`, `$__interval_s`, `$__conditionalAll(cond, $var)`) and Grafana variables
(`${run:singlequote}` ...). They must run on ClickHouse 18.16 and current ClickHouse alike: no CTEs,
window functions or `toStartOfInterval` (which is what `$__timeInterval` expands to), every subquery
aliased. Counts are exact under redelivery: raw tables are read with FINAL and the rollup through
`uniqExact*Merge` states; volume and negative counts are distinct stories (the novelty key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["timeseries", "table", "annotation", "variable"]


@dataclass(frozen=True)
class PanelQuery:
    """One query and the shape of its result.

    `columns` are the result's column names in order. For `timeseries` the first is the time
    bucket, then `labels` (string columns Grafana turns into one series per value), then values.
    """

    name: str
    kind: Kind
    sql: str
    columns: tuple[str, ...]
    labels: tuple[str, ...] = ()

    def render(self, database: str) -> str:
        """The template with the database filled in (macros and variables left for Grafana)."""
        return self.sql.strip().replace("{db}", database)


def _bucket(column: str, seconds: str = "$__interval_s") -> str:
    return f"toDateTime(intDiv(toUInt32({column}), {seconds}) * {seconds}, 'UTC') AS time"


# A rollup bucket is one minute: never group it finer than that.
_ROLLUP_SECONDS = "greatest($__interval_s, 60)"

_DOCS = """
FROM {db}.classifications FINAL
WHERE run_id = ${run:singlequote} AND $__timeFilter(published_at)
  AND $__conditionalAll(topic IN (${topic:singlequote}), $topic)
  AND $__conditionalAll(source IN (${source:singlequote}), $source)"""

_TICKER = """
FROM {db}.sentiment_1m
WHERE run_id = ${run:singlequote} AND key_kind = 'ticker' AND key = ${ticker:singlequote}
  AND $__timeFilter(bucket)"""

_RUN = "run_id = ${run:singlequote}"

# --- variables -----------------------------------------------------------------------------------

RUNS = PanelQuery("runs", "variable", "SELECT DISTINCT run_id FROM {db}.classifications", ("run_id",))
TOPICS = PanelQuery(
    "topics",
    "variable",
    f"SELECT DISTINCT topic FROM {{db}}.classifications WHERE {_RUN} ORDER BY topic",
    ("topic",),
)
SOURCES = PanelQuery(
    "sources",
    "variable",
    f"SELECT DISTINCT source FROM {{db}}.classifications WHERE {_RUN} ORDER BY source",
    ("source",),
)
TICKERS = PanelQuery(
    "tickers",
    "variable",
    f"SELECT DISTINCT key FROM {{db}}.sentiment_1m WHERE {_RUN} AND key_kind = 'ticker' ORDER BY key",
    ("key",),
)

# --- market sentiment ----------------------------------------------------------------------------


def html_escaped(expr: str) -> str:
    """SQL escaping `&`, `<`, `>` and `"` (Grafana renders annotation text as HTML; 18.16 has no
    encodeXMLComponent)."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        expr = f"replaceAll({expr}, '{char}', '{entity}')"
    return expr


# One region per alert episode: from its firing window's start to the end of its resolved window
# (the firing window while it is still open), described by its latest event.
ALERT_ANNOTATIONS = PanelQuery(
    "alert_annotations",
    "annotation",
    f"""
SELECT min(window_start) AS time, max(window_end) AS timeEnd,
       concat(argMax(severity, resolved), ' ', key_kind, ' ', {html_escaped("key")}, ': ',
              toString(argMax(negative, resolved)), ' of ', toString(argMax(volume, resolved)),
              ' stories negative (share ', toString(round(argMax(negative_share, resolved), 2)),
              ', z ', toString(round(argMax(z_score, resolved), 1)), ')',
              if(max(resolved) = 1, '', ', still firing')) AS text,
       concat(rule, ',', argMax(severity, resolved), ',', key_kind, ':', key) AS tags
FROM (
    SELECT alert_id, rule, key_kind, key, severity, window_start, window_end, volume, negative,
           negative_share, z_score, state = 'resolved' AS resolved
    FROM {{db}}.alerts FINAL
    WHERE {_RUN} AND $__timeFilter(window_start)
) AS events
GROUP BY alert_id, rule, key_kind, key
HAVING min(resolved) = 0
ORDER BY time""",
    ("time", "timeEnd", "text", "tags"),
)

OVERVIEW = PanelQuery(
    "overview",
    "table",
    f"""
SELECT uniqExact(story_id) AS stories, uniqExact(doc_id) AS documents,
       uniqExactIf(story_id, sentiment = 'negative') / greatest(uniqExact(story_id), 1) AS negative_share,
       avg(score) AS sentiment_index
{_DOCS}""",
    ("stories", "documents", "negative_share", "sentiment_index"),
)

ALERTS_FIRING = PanelQuery(
    "alerts_firing",
    "table",
    f"SELECT uniqExact(alert_id) AS alerts FROM {{db}}.alerts "
    f"WHERE {_RUN} AND state = 'firing' AND $__timeFilter(window_start)",
    ("alerts",),
)


def _by_topic(name: str, column: str, expression: str) -> PanelQuery:
    """A per-topic time series of one aggregate over the selected documents."""
    return PanelQuery(
        name,
        "timeseries",
        f"""
SELECT {_bucket("published_at")}, topic, {expression} AS {column}
{_DOCS}
GROUP BY time, topic
ORDER BY time, topic""",
        ("time", "topic", column),
        labels=("topic",),
    )


SENTIMENT_BY_TOPIC = _by_topic("sentiment_by_topic", "sentiment_index", "avg(score)")
NEGATIVE_SHARE_BY_TOPIC = _by_topic(
    "negative_share_by_topic",
    "negative_share",
    "uniqExactIf(story_id, sentiment = 'negative') / uniqExact(story_id)",
)
VOLUME_BY_TOPIC = _by_topic("volume_by_topic", "stories", "uniqExact(story_id)")
# The floor of a confident call, as in storage's `confidence_1m` rollup and the rules' `negatives`.
_CONFIDENT = "confidence >= 0.6"
CONFIDENT_NEGATIVE_SHARE_BY_TOPIC = _by_topic(
    "confident_negative_share_by_topic",
    "confident_negative_share",
    f"uniqExactIf(story_id, sentiment = 'negative' AND {_CONFIDENT}) / uniqExact(story_id)",
)
UNSURE_SHARE_BY_TOPIC = _by_topic(
    "unsure_share_by_topic", "unsure_share", f"uniqExactIf(doc_id, NOT ({_CONFIDENT})) / uniqExact(doc_id)"
)

MOST_NEGATIVE = PanelQuery(
    "most_negative",
    "table",
    f"""
SELECT published_at AS time, source, topic, arrayStringConcat(tickers, ' ') AS ticker_list, title,
       round(score, 3) AS sentiment_score, url
{_DOCS}
ORDER BY score ASC, doc_id
LIMIT 1 BY story_id
LIMIT 25""",
    ("time", "source", "topic", "ticker_list", "title", "sentiment_score", "url"),
)

TICKER_SENTIMENT = PanelQuery(
    "ticker_sentiment",
    "timeseries",
    f"""
SELECT {_bucket("bucket", _ROLLUP_SECONDS)},
       arrayReduce('avg', arrayMap(x -> tupleElement(x, 2), groupUniqArrayMerge(doc_scores)))
           AS sentiment_index,
       uniqExactIfMerge(negative_stories) / uniqExactMerge(stories) AS negative_share
{_TICKER}
GROUP BY time
ORDER BY time""",
    ("time", "sentiment_index", "negative_share"),
)

TICKER_VOLUME = PanelQuery(
    "ticker_volume",
    "timeseries",
    f"""
SELECT {_bucket("bucket", _ROLLUP_SECONDS)},
       uniqExactMerge(stories) AS stories, uniqExactIfMerge(negative_stories) AS negative_stories
{_TICKER}
GROUP BY time
ORDER BY time""",
    ("time", "stories", "negative_stories"),
)

TICKER_RANKING = PanelQuery(
    "ticker_ranking",
    "table",
    f"""
SELECT key AS ticker, uniqExactMerge(stories) AS story_count,
       uniqExactIfMerge(negative_stories) AS negative_count,
       round(negative_count / story_count, 3) AS negative_share
FROM {{db}}.sentiment_1m
WHERE {_RUN} AND key_kind = 'ticker' AND $__timeFilter(bucket)
GROUP BY key
ORDER BY negative_count DESC, story_count DESC, ticker
LIMIT 20""",
    ("ticker", "story_count", "negative_count", "negative_share"),
)

# --- pipeline health -----------------------------------------------------------------------------

THROUGHPUT = PanelQuery(
    "throughput",
    "timeseries",
    f"""
SELECT time, sum(ingested) / $__interval_s AS ingested_per_s, sum(stored) / $__interval_s AS stored_per_s
FROM (
    SELECT {_bucket("ingested_at")}, count() AS ingested, toUInt64(0) AS stored
    FROM {{db}}.classifications FINAL
    WHERE {_RUN} AND $__timeFilter(ingested_at)
    GROUP BY time
    UNION ALL
    SELECT {_bucket("stored_at")}, toUInt64(0) AS ingested, count() AS stored
    FROM {{db}}.classifications FINAL
    WHERE {_RUN} AND $__timeFilter(stored_at)
    GROUP BY time
) AS flows
GROUP BY time
ORDER BY time""",
    ("time", "ingested_per_s", "stored_per_s"),
)


def _percentiles(expression: str) -> str:
    return ", ".join(f"quantileExact(0.{p})({expression}) AS p{p}" for p in (50, 95, 99))


def _latency(name: str, expression: str) -> PanelQuery:
    """p50/p95/p99 of a per-document latency, bucketed by when documents were stored."""
    return PanelQuery(
        name,
        "timeseries",
        f"""
SELECT {_bucket("stored_at")}, {_percentiles(expression)}
FROM {{db}}.classifications FINAL
WHERE {_RUN} AND $__timeFilter(stored_at)
GROUP BY time
ORDER BY time""",
        ("time", "p50", "p95", "p99"),
    )


PUBLISH_TO_STORE = _latency("publish_to_store", "toInt64(toUInt32(stored_at)) - toUInt32(published_at)")
PIPELINE_LATENCY = _latency("pipeline_latency", "pipeline_latency_ms")

BATCH_SIZES = PanelQuery(
    "batch_sizes",
    "timeseries",
    f"""
SELECT {_bucket("stored_at")}, avg(batch_size) AS mean_batch, max(batch_size) AS max_batch,
       count() AS batches
FROM {{db}}.pipeline_batches
WHERE {_RUN} AND $__timeFilter(stored_at)
GROUP BY time
ORDER BY time""",
    ("time", "mean_batch", "max_batch", "batches"),
)

STAGE_TIMINGS = PanelQuery(
    "stage_timings",
    "timeseries",
    f"""
SELECT {_bucket("stored_at")}, avg(decode_ms) AS decode_ms, avg(inference_ms) AS inference_ms,
       avg(insert_ms) AS insert_ms
FROM {{db}}.pipeline_batches
WHERE {_RUN} AND $__timeFilter(stored_at)
GROUP BY time
ORDER BY time""",
    ("time", "decode_ms", "inference_ms", "insert_ms"),
)

DLQ_RATE = PanelQuery(
    "dlq_rate",
    "timeseries",
    f"""
SELECT {_bucket("received_at")}, topic, count() / $__interval_s AS dead_letters_per_s
FROM {{db}}.dead_letters FINAL
WHERE $__timeFilter(received_at)
GROUP BY time, topic
ORDER BY time, topic""",
    ("time", "topic", "dead_letters_per_s"),
    labels=("topic",),
)

DLQ_RECENT = PanelQuery(
    "dlq_recent",
    "table",
    """
SELECT received_at AS time, topic, partition, offset, reason
FROM {db}.dead_letters FINAL
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC, partition, offset
LIMIT 50""",
    ("time", "topic", "partition", "offset", "reason"),
)

MODEL_VERSIONS = PanelQuery(
    "model_versions",
    "table",
    f"""
SELECT model_version, backend, sum(batch_size) AS documents, count() AS batch_count,
       min(stored_at) AS first_seen, max(stored_at) AS last_seen
FROM {{db}}.pipeline_batches
WHERE {_RUN} AND $__timeFilter(stored_at)
GROUP BY model_version, backend
ORDER BY last_seen DESC""",
    ("model_version", "backend", "documents", "batch_count", "first_seen", "last_seen"),
)

DELIVERIES = PanelQuery(
    "deliveries",
    "timeseries",
    f"""
SELECT {_bucket("attempted_at")}, countIf(outcome = 'delivered') AS delivered,
       countIf(outcome = 'retry') AS retried, countIf(outcome = 'failed') AS failed
FROM {{db}}.alert_deliveries
WHERE $__timeFilter(attempted_at)
GROUP BY time
ORDER BY time""",
    ("time", "delivered", "retried", "failed"),
)

DELIVERY_PROBLEMS = PanelQuery(
    "delivery_problems",
    "table",
    """
SELECT attempted_at AS time, alert_id, endpoint, attempt, toString(outcome) AS result, status_code, error
FROM {db}.alert_deliveries
WHERE outcome != 'delivered' AND $__timeFilter(attempted_at)
ORDER BY attempted_at DESC
LIMIT 50""",
    ("time", "alert_id", "endpoint", "attempt", "result", "status_code", "error"),
)


def all_queries() -> list[PanelQuery]:
    """Every query defined in this module."""
    return [value for value in globals().values() if isinstance(value, PanelQuery)]
