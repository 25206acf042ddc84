"""Every dashboard query, expanded as Grafana would, runs on ClickHouse 18.16 and current ClickHouse (chDB)
against pipeline-like data and returns rows in the shape its panel expects; the PNG report renders."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from numbers import Real
from pathlib import Path

import pytest

from dashboards import panel_sql as q
from dashboards.generate import dashboards
from dashboards.macros import ALL, QueryContext, expand
from dashboards.report import render_report
from ingest.schema import Document, make_doc_id
from models.base import Prediction
from storage.client import ClickHouseClient, connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter, ClassifiedBatch, DeadLetter

TOPICS = ("earnings", "macro", "mergers", "regulation")
SOURCES = ("reuters", "bloomberg", "stocktwits")
TICKERS = ("AAPL", "TSLA", "NVDA", "JPM", "XOM")
HOURS = 4
DOCS = 480
# Ten-minute aligned so the spike fills whole 5-minute buckets; stored_at is the real clock.
NOW = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 600 * 600, UTC)
START = NOW - timedelta(hours=HOURS)
SPIKE = (START + timedelta(hours=3), START + timedelta(hours=3, minutes=30))
ALERT_COLUMNS = (
    "alert_id", "run_id", "rule", "key_kind", "key", "state", "severity", "window_start", "window_end",
    "detected_at", "volume", "negative", "negative_share", "baseline", "z_score", "payload",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "alert_id", "state", "endpoint", "attempt", "attempted_at", "status_code", "outcome", "error",
)  # fmt: skip


def _documents(rng: random.Random) -> tuple[list[Document], list[Prediction]]:
    """Docs every 30 s over four hours; every fifth is a reprint (same story, other source);
    negative sentiment spikes for `regulation` / TSLA during SPIKE."""
    docs, preds, title = [], [], ""
    for i in range(DOCS):
        published = START + timedelta(seconds=30 * i)
        topic, ticker = TOPICS[i % len(TOPICS)], TICKERS[i % len(TICKERS)]
        if i % 5 or not title:
            title = f"{ticker} {topic} headline {i}"
        source = SOURCES[i % len(SOURCES)]
        docs.append(
            Document(
                doc_id=make_doc_id(source, str(i), title),
                source=source,
                kind="social" if source == "stocktwits" else "news",
                published_at=published,
                ingested_at=published + timedelta(seconds=rng.uniform(1, 20)),
                title=title,
                url=f"https://news.example/{source}/{i}",
                tickers=(ticker,) if i % 7 or ticker == "AAPL" else (ticker, "AAPL"),
            )
        )
        in_spike = SPIKE[0] <= published < SPIKE[1] and (topic == "regulation" or ticker == "TSLA")
        p_neg = rng.uniform(0.6, 0.95) if in_spike or rng.random() < 0.2 else rng.uniform(0.0, 0.3)
        p_pos = rng.uniform(0.0, 1.0 - p_neg)
        probs = {"negative": p_neg, "neutral": 1 - p_neg - p_pos, "positive": p_pos}
        preds.append(Prediction(topic, 0.9, max(probs, key=probs.__getitem__), *probs.values()))
    return docs, preds


def load_pipeline_output(client: ClickHouseClient, settings: ClickHouseSettings) -> dict[str, float]:
    """Store what a live run and a replay would leave behind; return the exact expected counts."""
    rng = random.Random(7)
    # Keep the redelivered rows as separate parts so only FINAL / exact-distinct can hide them.
    client.command(f"SYSTEM STOP MERGES {client.database}.classifications")
    writer = BatchWriter(client, settings)
    docs, preds = _documents(rng)
    for start in range(0, DOCS, 32):
        batch = ClassifiedBatch(
            run_id="live",
            documents=docs[start : start + 32],
            predictions=preds[start : start + 32],
            model_version="finbert-v1" if start < DOCS // 2 else "finbert-v2",
            backend="onnxruntime",
            worker="w1",
            invalid=start % 3,
            decode_ms=rng.uniform(1, 5),
            inference_ms=rng.uniform(40, 120),
        )
        writer.write(batch)
        if start == 64:
            writer.write(batch)  # redelivered after a crash: must not change any count
    writer.write(ClassifiedBatch("replay-1", docs[:40], preds[:40], "finbert-v2", archive=False))
    writer.write_dead_letters(
        [
            DeadLetter("finpulse.docs.raw", p, 100 + p, "document has neither title nor text", b"{}")
            for p in range(3)
        ]
    )
    alerts = [
        ("a-reg", "live", "negative_spike", "topic", "regulation", "firing", "critical", *SPIKE),
        ("a-tsla", "live", "negative_spike", "ticker", "TSLA", "firing", "warning",
         SPIKE[0] + timedelta(minutes=5), SPIKE[1]),
        ("a-tsla", "live", "negative_spike", "ticker", "TSLA", "resolved", "warning",
         SPIKE[0] + timedelta(minutes=5), SPIKE[1]),
    ]  # fmt: skip
    client.insert(
        f"{client.database}.alerts",
        ALERT_COLUMNS,
        [(*a, a[8], 30, 21, 0.7, 0.2, 4.2, "{}") for a in alerts],
    )
    desk, oms = "https://hooks.example/desk", "https://hooks.example/oms"
    attempts = [
        ("a-reg", "firing", desk, 1, NOW - timedelta(minutes=50), 200, "delivered", ""),
        ("a-tsla", "firing", desk, 1, NOW - timedelta(minutes=45), 503, "retry", "503"),
        ("a-tsla", "firing", desk, 2, NOW - timedelta(minutes=44), 200, "delivered", ""),
        ("a-tsla", "firing", oms, 8, NOW - timedelta(minutes=20), 0, "failed", "timeout"),
    ]
    client.insert(f"{client.database}.alert_deliveries", DELIVERY_COLUMNS, attempts)
    return {
        "documents": DOCS,
        "stories": len({d.story_id for d in docs}),
        "mean_score": sum(p.score for p in preds) / DOCS,
    }


def _contexts() -> dict[str, QueryContext]:
    window = dict(
        time_from=START - timedelta(minutes=1),
        time_to=datetime.now(UTC) + timedelta(minutes=5),
        interval_s=300,
    )
    return {
        "all": QueryContext(
            **window, variables={"run": "live", "topic": ALL, "source": ALL, "ticker": "TSLA"}
        ),
        "some": QueryContext(
            **window,
            variables={
                "run": "live",
                "topic": ["earnings", "regulation"],
                "source": ["reuters"],
                "ticker": "AAPL",
            },
        ),
    }


def dashboard_queries(database: str) -> list[tuple[str, q.PanelQuery]]:
    """(where, query) for every SQL in the generated dashboards: panels, annotations, variables."""
    known = {query.render(database): query for query in q.all_queries()}
    found = []
    for stem, model in dashboards(database).items():
        sqls = [(f"{stem}/{p['title']}", t["rawSql"]) for p in model["panels"] for t in p.get("targets", [])]
        sqls += [
            (f"{stem}/annotation {a['name']}", a["target"]["rawSql"]) for a in model["annotations"]["list"]
        ]
        sqls += [(f"{stem}/variable {v['name']}", v["query"]) for v in model["templating"]["list"]]
        for where, sql in sqls:
            assert sql in known, f"{where}: SQL is not one of dashboards.panel_sql"
            found.append((where, known[sql]))
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def assert_shape(where: str, query: q.PanelQuery, rows: list[tuple]) -> None:
    """The result has the columns, types and order the panel kind needs."""
    assert rows, f"{where}: no rows"
    assert all(len(row) == len(query.columns) for row in rows), f"{where}: expected columns {query.columns}"
    named = dict(zip(query.columns, zip(*rows, strict=True), strict=True))
    for name, values in named.items():
        if name in ("time", "timeEnd", "first_seen", "last_seen"):
            assert all(isinstance(v, datetime) for v in values), f"{where}: {name} is not a DateTime"
    if query.kind == "timeseries":
        assert query.columns[0] == "time"
        times = named["time"]
        assert list(times) == sorted(times), f"{where}: rows not ordered by time"
        keys = [row[: 1 + len(query.labels)] for row in rows]
        assert len(keys) == len(set(keys)), f"{where}: duplicate (time, labels) rows break long-to-wide"
        for label in query.labels:
            assert all(isinstance(v, str) for v in named[label]), f"{where}: label {label} not a string"
        values = [c for c in query.columns[1:] if c not in query.labels]
        assert values and all(_is_number(v) for c in values for v in named[c]), f"{where}: non-numeric values"
    elif query.kind == "annotation":
        assert query.columns[:4] == ("time", "timeEnd", "text", "tags")
        assert all(isinstance(t, str) and t for t in named["text"])
    elif query.kind == "variable":
        assert len(query.columns) == 1 and all(isinstance(v, str) and v for v in named[query.columns[0]])


def check_all_queries(client: ClickHouseClient, expected: dict[str, float]) -> None:
    """Run every dashboard query in both variable contexts, then check a few values."""
    for context_name, context in _contexts().items():
        for where, query in dashboard_queries(client.database):
            sql = expand(query.render(client.database), context)
            rows = client.query(sql)
            assert_shape(f"{where} [{context_name}]", query, rows)
            # Selecting the declared names from the panel's result proves the column names Grafana sees.
            named = client.query(f"SELECT {', '.join(query.columns)} FROM ({sql}) AS panel")
            assert len(named) == len(rows)
    all_context = _contexts()["all"]
    ((stories, documents, share, index),) = client.query(
        expand(q.OVERVIEW.render(client.database), all_context)
    )
    assert (stories, documents) == (expected["stories"], expected["documents"]), "counts not exact"
    assert 0 < share < 1 and index == pytest.approx(expected["mean_score"], abs=1e-5), "a duplicate weighs in"
    flows = client.query(expand(q.THROUGHPUT.render(client.database), all_context))
    for column in (1, 2):  # ingested/s, stored/s: each document once despite the redelivered batch
        assert round(sum(row[column] for row in flows) * all_context.interval_s) == expected["documents"]
    by_topic = client.query(expand(q.NEGATIVE_SHARE_BY_TOPIC.render(client.database), all_context))
    spike = [s for t, topic, s in by_topic if topic == "regulation" and SPIKE[0] <= t < SPIKE[1]]
    assert len(spike) == 6
    calm = [s for t, topic, s in by_topic if topic == "regulation" and t < SPIKE[0]]
    assert min(spike) > max(sum(calm) / len(calm), 0.4), "the negative spike is not visible"
    confident = client.query(expand(q.CONFIDENT_NEGATIVE_SHARE_BY_TOPIC.render(client.database), all_context))
    negative = {(t, topic): share for t, topic, share in by_topic}
    assert {(t, topic) for t, topic, _ in confident} == negative.keys()
    assert all(share <= negative[t, topic] + 1e-9 for t, topic, share in confident), "confident > all"


def test_queries_and_report_on_clickhouse_18_server(
    ch_client: ClickHouseClient, clickhouse_settings, tmp_path: Path
) -> None:
    assert ch_client.server_version()[0] == 18
    expected = load_pipeline_output(ch_client, clickhouse_settings)
    check_all_queries(ch_client, expected)
    assert render_report(ch_client, "replay-1", tmp_path / "replay.png").stat().st_size > 30_000


@pytest.fixture
def chdb_client(tmp_path: Path) -> Iterator[tuple[ClickHouseClient, ClickHouseSettings]]:
    settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path / "chdb")
    client = connect(settings)
    migrate(client)
    yield client, settings
    client.close()


def test_queries_on_current_clickhouse_and_png_report(chdb_client, tmp_path: Path) -> None:
    client, settings = chdb_client
    assert client.server_version()[0] >= 23
    expected = load_pipeline_output(client, settings)
    check_all_queries(client, expected)
    png = render_report(client, "live", tmp_path / "report" / "market.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    with pytest.raises(ValueError, match="no classified documents"):
        render_report(client, "no-such-run", tmp_path / "empty.png")


def test_annotation_text_is_html_escaped_by_the_server(ch_client: ClickHouseClient) -> None:
    hostile = "'<img src=x onerror=\"a()\">&'"
    (row,) = ch_client.query("SELECT " + q.html_escaped(hostile))
    assert row == ("&lt;img src=x onerror=&quot;a()&quot;&gt;&amp;",)
