"""The finpulse dashboards and provisioning files, generated from Python.

`build_files(out_root)` writes what is checked in under `dashboards/`: `json/*.json`, the
provisioning YAML that docker-compose mounts, and Prometheus' scrape configuration and alert rules
(`prometheus/`, see dashboards/prometheus.py); a test asserts the checked-in copies are current.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards import panel_sql as q
from dashboards import prometheus
from dashboards.model import (
    DATASOURCE_UID,
    PLUGIN_ID,
    Json,
    annotation,
    color_override,
    dashboard,
    link_override,
    query_variable,
    row,
    stat,
    table,
    timeseries,
)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE = "finpulse"
# Where docker-compose mounts dashboards/json inside the Grafana container.
CONTAINER_DASHBOARD_DIR = "/etc/grafana/dashboards/finpulse"


def _run_variable(database: str) -> Json:
    return query_variable("run", "Run", q.RUNS, database, current="live")


def market_sentiment(database: str = DEFAULT_DATABASE) -> Json:
    """Sentiment index, negative share and volume per topic, alerts, worst documents, per ticker."""
    db = database
    exact = "Distinct stories (novelty key): reprints and redelivered batches count once."
    panels = [
        stat("Stories", q.OVERVIEW, db, (0, 0, 5, 4), "stories", description=exact),
        stat("Negative share", q.OVERVIEW, db, (5, 0, 5, 4), "negative_share", unit="percentunit"),
        stat("Sentiment index", q.OVERVIEW, db, (10, 0, 5, 4), "sentiment_index", decimals=3, min=-1, max=1,
             description="Mean signed score (p_positive - p_negative) of the documents in range."),
        stat("Alerts fired", q.ALERTS_FIRING, db, (15, 0, 4, 4), "alerts"),
        stat("Documents", q.OVERVIEW, db, (19, 0, 5, 4), "documents"),
        timeseries("Sentiment index by topic", q.SENTIMENT_BY_TOPIC, db, (0, 4, 12, 9), min=-1, max=1,
                   description="Mean signed score per topic; alert windows are shaded."),
        timeseries("Negative share by topic", q.NEGATIVE_SHARE_BY_TOPIC, db, (12, 4, 12, 9),
                   unit="percentunit", min=0, max=1, description="Negative stories / stories per topic."),
        timeseries("Volume by topic (stories)", q.VOLUME_BY_TOPIC, db, (0, 13, 24, 8), bars=True,
                   description=exact),
        table("Most negative documents", q.MOST_NEGATIVE, db, (0, 21, 24, 10),
              description="Lowest scores in range, one document per story; the title opens the article.",
              overrides=[link_override("title", "Open article"), link_override("url", "Open article")]),
        timeseries("Confident negative share by topic", q.CONFIDENT_NEGATIVE_SHARE_BY_TOPIC, db,
                   (0, 31, 12, 8), unit="percentunit", min=0, max=1,
                   description="Stories called negative with calibrated confidence >= 0.6 / stories: what "
                               "rules with `negatives: confident` count."),
        timeseries("Unsure calls by topic", q.UNSURE_SHARE_BY_TOPIC, db, (12, 31, 12, 8),
                   unit="percentunit", min=0, max=1,
                   description="Documents whose sentiment was called with confidence < 0.6. A rise means "
                               "text unlike what the model was trained on."),
        row("Ticker: ${ticker}", 39),
        timeseries("${ticker}: sentiment index and negative share", q.TICKER_SENTIMENT, db, (0, 40, 12, 8),
                   description="From the one-minute rollup (all sources).",
                   overrides=[{"matcher": {"id": "byName", "options": "negative_share"},
                               "properties": [{"id": "unit", "value": "percentunit"}]}]),
        timeseries("${ticker}: volume", q.TICKER_VOLUME, db, (12, 40, 12, 8), bars=True,
                   overrides=[color_override("negative_stories", "red")]),
        table("Tickers by negative stories", q.TICKER_RANKING, db, (0, 48, 24, 8)),
    ]  # fmt: skip
    variables = [
        _run_variable(db),
        query_variable("topic", "Topic", q.TOPICS, db, multi=True),
        query_variable("source", "Source", q.SOURCES, db, multi=True),
        query_variable("ticker", "Ticker", q.TICKERS, db),
    ]
    return dashboard(
        "finpulse-market",
        "finpulse · Market sentiment",
        "Sentiment index, negative share and volume per topic and ticker, with alert annotations.",
        panels,
        variables,
        [annotation("Alerts", q.ALERT_ANNOTATIONS, db, "red")],
    )


def pipeline_health(database: str = DEFAULT_DATABASE) -> Json:
    """Throughput, latency, batches, dead letters, model versions and alert deliveries."""
    db = database
    panels = [
        timeseries("Documents/s in and stored", q.THROUGHPUT, db, (0, 0, 12, 8), unit="reqps",
                   description="In: by ingest time. Stored: by ClickHouse write time (exact, FINAL)."),
        timeseries("Batch sizes", q.BATCH_SIZES, db, (12, 0, 12, 8),
                   description="Micro-batch sizes per stored batch (pipeline_batches)."),
        timeseries("Published → stored latency", q.PUBLISH_TO_STORE, db, (0, 8, 12, 8), unit="s",
                   description="Event time to ClickHouse write, p50/p95/p99 (replays show their age)."),
        timeseries("Pipeline latency (ingest → stored)", q.PIPELINE_LATENCY, db, (12, 8, 12, 8), unit="ms",
                   description="pipeline_latency_ms p50/p95/p99."),
        timeseries("Stage timings per batch", q.STAGE_TIMINGS, db, (0, 16, 12, 8), unit="ms"),
        table("Model version in use", q.MODEL_VERSIONS, db, (12, 16, 12, 8)),
        timeseries("Dead letters/s", q.DLQ_RATE, db, (0, 24, 12, 8), unit="reqps", bars=True),
        table("Recent dead letters", q.DLQ_RECENT, db, (12, 24, 12, 8)),
        timeseries("Alert deliveries", q.DELIVERIES, db, (0, 32, 12, 8), bars=True,
                   overrides=[color_override("delivered", "green"), color_override("retried", "orange"),
                              color_override("failed", "red")]),
        table("Delivery retries and failures", q.DELIVERY_PROBLEMS, db, (12, 32, 12, 8)),
    ]  # fmt: skip
    return dashboard(
        "finpulse-pipeline",
        "finpulse · Pipeline health",
        "Stream throughput and latency, batches, dead letters, model versions and webhook deliveries.",
        panels,
        [_run_variable(db)],
        [annotation("Alerts", q.ALERT_ANNOTATIONS, db, "red")],
        time_from="now-1h",
    )


def dashboards(database: str = DEFAULT_DATABASE) -> dict[str, Json]:
    """All dashboards by file stem."""
    return {"market-sentiment": market_sentiment(database), "pipeline-health": pipeline_health(database)}


def datasource(host: str, port: int | str, user: str, password: str, database: str) -> Json:
    """The ClickHouse data source (native protocol) as Grafana's API and provisioning take it."""
    return {
        "name": "ClickHouse (finpulse)",
        "type": PLUGIN_ID,
        "uid": DATASOURCE_UID,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {"host": host, "port": port, "protocol": "native", "secure": False, "username": user,
                     "defaultDatabase": database},
        "secureJsonData": {"password": password},
    }  # fmt: skip


def provisioning_files(database: str = DEFAULT_DATABASE) -> dict[str, Json]:
    """Provisioning YAML documents by path relative to `dashboards/provisioning/`.

    Connection details come from the Grafana container's environment at start-up.
    """
    source = datasource(
        "${FINPULSE_CLICKHOUSE_HOST}",
        "${FINPULSE_CLICKHOUSE_PORT}",
        "${FINPULSE_CLICKHOUSE_USER}",
        "${FINPULSE_CLICKHOUSE_PASSWORD}",
        database,
    )
    provider = {
        "name": "finpulse",
        "type": "file",
        "folder": "finpulse",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": CONTAINER_DASHBOARD_DIR},
    }
    return {
        "datasources/finpulse-clickhouse.yaml": {"apiVersion": 1, "datasources": [source]},
        "datasources/finpulse-prometheus.yaml": {"apiVersion": 1, "datasources": [prometheus.datasource()]},
        "dashboards/finpulse.yaml": {"apiVersion": 1, "providers": [provider]},
    }


def rendered_files(database: str = DEFAULT_DATABASE) -> dict[str, str]:
    """Every generated file's text by path relative to the `dashboards/` package."""
    models = {**dashboards(database), "pipeline-metrics": prometheus.pipeline_dashboard()}
    files = {
        f"json/{stem}.json": json.dumps(model, indent=2, ensure_ascii=False) + "\n"
        for stem, model in models.items()
    }
    header = "# Generated by `finpulse grafana build` (dashboards/generate.py); do not edit.\n"
    documents = {f"provisioning/{path}": document for path, document in provisioning_files(database).items()}
    documents["prometheus/prometheus.yml"] = prometheus.compose_scrape_config()
    documents[f"prometheus/{prometheus.RULES_FILE}"] = prometheus.rules_file()
    for path, document in documents.items():
        files[path] = header + yaml.safe_dump(document, sort_keys=False)
    return files


def build_files(out_root: Path = PACKAGE_DIR, database: str = DEFAULT_DATABASE) -> list[Path]:
    """Write the generated files under `out_root`; return their paths."""
    written = []
    for relative, text in rendered_files(database).items():
        path = out_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
