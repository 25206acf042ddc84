"""The alert worker against a real ClickHouse 18.16 server (and chDB): outbox, restarts, redelivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from alerts.buckets import bucket_series
from alerts.detector import detect
from alerts.receiver import WebhookReceiver
from alerts.rules import load_rules
from alerts.settings import AlertSettings, WebhookEndpoint
from alerts.worker import AlertWorker
from ingest.schema import Document, make_doc_id
from models.base import Prediction
from storage.client import ClickHouseClient, connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from storage.writer import BatchWriter, ClassifiedBatch

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"
SECRET = "integration-secret"
RULES_YAML = """
bucket_s: 60
forget_after_buckets: 120
rules:
  - {name: market-spike, key_kind: market, min_volume: 8, min_negative: 4, min_lift: 0.2, z_enter: 3,
     z_exit: 1.5, exit_buckets: 2, cooldown_buckets: 2, warmup_buckets: 5, halflife_buckets: 20}
  - {name: topic-spike, key_kind: topic, min_volume: 4, min_negative: 3, min_lift: 0.3, z_enter: 3,
     z_exit: 1.5, exit_buckets: 2, cooldown_buckets: 2, warmup_buckets: 5, halflife_buckets: 20}
"""
SPIKES = ((15, 18), (30, 32))  # minutes where most earnings stories turn negative


def _store_history(client: ClickHouseClient, settings: ClickHouseSettings, minutes: int = 45) -> None:
    docs, preds = [], []
    for m in range(minutes):
        spiking = any(a <= m < b for a, b in SPIKES)
        for i in range(10):
            title = f"Story {m}-{i}"
            docs.append(
                Document(
                    doc_id=make_doc_id("wire", f"{m}-{i}", title), source="wire",
                    published_at=T0 + timedelta(minutes=m, seconds=5 * i), title=title,
                    url=f"https://news.example/{m}/{i}",
                )
            )  # fmt: skip
            negative = (i < 8) if spiking else (i == 0)
            preds.append(
                Prediction(
                    topic="earnings" if i % 2 == 0 or spiking else "macro", topic_prob=0.9,
                    sentiment="negative" if negative else "neutral",
                    p_negative=0.9 if negative else 0.05, p_neutral=0.05 if negative else 0.9,
                    p_positive=0.05,
                )
            )  # fmt: skip
    BatchWriter(client, settings).write(
        ClassifiedBatch(run_id="live", documents=docs, predictions=preds, model_version="m1")
    )


def _settings(tmp_path: Path, receiver: WebhookReceiver, **extra) -> AlertSettings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML)
    values = {
        "rules_path": rules, "grace_s": 0, "lookback_s": 7200, "poll_interval_s": 0.2, "backoff_s": 0.05,
        "max_attempts": 2, "webhooks": [WebhookEndpoint(url=receiver.url, secret=SECRET, timeout_s=2)],
    }  # fmt: skip
    return AlertSettings(**{**values, **extra})


@pytest.fixture
def receiver():
    server = WebhookReceiver(SECRET)
    server.start()
    yield server
    server.stop()


def _rows(client: ClickHouseClient, sql: str) -> list[tuple]:
    return client.query(sql.replace("{db}", client.database))


def test_worker_fires_stores_delivers_and_restarts_without_refiring(
    ch_client: ClickHouseClient,
    clickhouse_settings: ClickHouseSettings,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    _store_history(ch_client, clickhouse_settings)
    settings = _settings(tmp_path, receiver)
    worker = AlertWorker(settings, ch_client)
    worker.setup()
    assert worker.current_watermark() == T0 + timedelta(minutes=44, seconds=45)
    events = worker.run_once()
    worker.close()
    kinds = {(e.rule, e.key, e.state) for e in events}
    assert ("topic-spike", "earnings", "firing") in kinds and ("topic-spike", "earnings", "resolved") in kinds
    earnings = sorted(e.window_start for e in events if e.key == "earnings" and e.state == "firing")
    assert earnings == [T0 + timedelta(minutes=15), T0 + timedelta(minutes=30)]
    keys = {e.idempotency_key for e in events}
    assert set(receiver.accepted) == keys and receiver.duplicates == 0
    body = receiver.accepted[next(e.idempotency_key for e in events if e.key == "earnings")]
    assert body["metrics"]["negative"] >= 8 and body["documents"] and body["documents"][0]["score"] < 0
    assert body["dashboard_url"].startswith(settings.dashboard_url)
    stored = _rows(
        ch_client, "SELECT alert_id, toString(state), count() FROM {db}.alerts GROUP BY alert_id, state"
    )
    assert {f"{a}:{s}" for a, s, _ in stored} == keys and {n for *_, n in stored} == {1}

    # a restarted worker resumes from the saved state: nothing new, nothing sent again
    again = AlertWorker(settings, ch_client)
    again.setup()
    assert again.state is not None and again.run_once() == []
    again.close()
    assert len(receiver.requests) == len(keys)
    delivered = _rows(ch_client, "SELECT count() FROM {db}.alert_deliveries WHERE outcome = 'delivered'")
    assert delivered == [(len(keys),)]


def test_receiver_down_then_up_delivers_exactly_once(
    ch_client: ClickHouseClient,
    clickhouse_settings: ClickHouseSettings,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    _store_history(ch_client, clickhouse_settings)
    settings = _settings(tmp_path, receiver)
    receiver.stop()
    worker = AlertWorker(settings, ch_client)
    worker.setup()
    events = worker.run_once()  # every attempt fails: connection refused
    worker.run_once()
    assert events and receiver.requests == []
    outcomes = _rows(ch_client, "SELECT DISTINCT toString(outcome) FROM {db}.alert_deliveries")
    assert outcomes == [("retry",)]
    receiver.start()  # same port
    worker.run_once()
    worker.run_once()
    worker.close()
    assert set(receiver.accepted) == {e.idempotency_key for e in events}
    assert len(receiver.requests) == len(events) and receiver.duplicates == 0


def test_live_polls_equal_backtest_over_stored_history(
    ch_client: ClickHouseClient,
    clickhouse_settings: ClickHouseSettings,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    _store_history(ch_client, clickhouse_settings)
    settings = _settings(tmp_path, receiver, lookback_s=3600)
    worker = AlertWorker(settings, ch_client)
    worker.setup()
    live = []
    for seconds in range(600, 2701, 210):  # polls every 3.5 minutes of event time
        live += worker.run_once(T0 + timedelta(seconds=seconds))
    worker.close()
    rules = load_rules(settings.rules_path)
    start = T0 + timedelta(seconds=600) - timedelta(seconds=3600)
    series = bucket_series(ch_client, "live", start, T0 + timedelta(hours=1), 60, rules.key_kinds)
    backtest = detect(series, rules, None, T0 + timedelta(seconds=2700))
    assert live == backtest.events and len(live) >= 4


def _worker_process(settings: ClickHouseSettings, alert: AlertSettings) -> subprocess.Popen:
    env = {
        **os.environ,
        "FINPULSE_CLICKHOUSE_MODE": "server",
        "FINPULSE_CLICKHOUSE_PORT": str(settings.port),
        "FINPULSE_CLICKHOUSE_DATABASE": settings.database,
        "FINPULSE_ALERTS_RULES_PATH": str(alert.rules_path),
        "FINPULSE_ALERTS_GRACE_S": "0",
        "FINPULSE_ALERTS_LOOKBACK_S": "7200",
        "FINPULSE_ALERTS_POLL_INTERVAL_S": "0.2",
        "FINPULSE_ALERTS_BACKOFF_S": "0.05",
        "FINPULSE_ALERTS_WEBHOOKS": orjson.dumps(
            [{"url": w.url, "secret": w.secret.get_secret_value(), "timeout_s": 30} for w in alert.webhooks]
        ).decode(),
    }
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-m", "alerts.cli", "run"], env=env, cwd=root)


def _wait(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_worker_killed_mid_delivery_loses_nothing_and_refires_nothing(
    ch_client: ClickHouseClient,
    clickhouse_settings: ClickHouseSettings,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    _store_history(ch_client, clickhouse_settings)
    release = threading.Event()
    # the first request hangs (no response) until the worker has been killed
    receiver.responder = lambda request: (
        (release.wait(60), (503, {}))[1] if len(receiver.requests) == 1 else None
    )
    alert = _settings(tmp_path, receiver)
    first = _worker_process(clickhouse_settings, alert)
    try:
        _wait(lambda: len(receiver.requests) >= 1)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    release.set()
    stored = _rows(ch_client, "SELECT alert_id, toString(state) FROM {db}.alerts")
    expected = {f"{a}:{s}" for a, s in stored}
    assert expected and not receiver.accepted
    assert _rows(ch_client, "SELECT count() FROM {db}.alert_deliveries WHERE outcome = 'delivered'") == [(0,)]

    second = _worker_process(clickhouse_settings, alert)
    try:
        _wait(lambda: set(receiver.accepted) == expected)
        time.sleep(1.0)  # a few more polls: nothing new may arrive
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    assert set(receiver.accepted) == expected and receiver.duplicates == 0
    after = _rows(
        ch_client, "SELECT alert_id, toString(state), count() FROM {db}.alerts GROUP BY alert_id, state"
    )
    assert {f"{a}:{s}" for a, s, _ in after} == expected and {n for *_, n in after} == {1}


def _store_demo_feed(client: ClickHouseClient, settings: ClickHouseSettings) -> None:
    """The shipped demo feed, with its labelled topic and sentiment standing in for the classifier."""
    docs, preds = [], []
    for line in (SAMPLES / "demo_feed.jsonl").read_text().splitlines():
        record = orjson.loads(line)
        native_id, meta = record.pop("id"), record["meta"]
        docs.append(Document(doc_id=make_doc_id(record["source"], native_id, record["text"]), **record))
        negative = meta["label_sentiment"] == "negative"
        preds.append(
            Prediction(
                topic=meta["label_topic"], topic_prob=0.9, sentiment=meta["label_sentiment"],
                p_negative=0.8 if negative else 0.1, p_neutral=0.1, p_positive=0.1 if negative else 0.8,
            )
        )  # fmt: skip
    BatchWriter(client, settings).write(
        ClassifiedBatch(run_id="live", documents=docs, predictions=preds, model_version="labels")
    )


def test_embedded_demo_fires_with_shipped_rules(tmp_path: Path, receiver: WebhookReceiver) -> None:
    """chDB (the embedded demo's storage), historical timestamps, shipped rules: the demo bursts fire."""
    settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path / "chdb")
    client = connect(settings)
    alert = AlertSettings(webhooks=[WebhookEndpoint(url=receiver.url, secret=SECRET)], grace_s=60)
    try:
        migrate(client)
        _store_demo_feed(client, settings)
        worker = AlertWorker(alert, client)
        worker.setup()
        events = worker.run_once()
        assert worker.run_once() == []
        worker.close()
        again = AlertWorker(alert, client)
        again.setup()
        assert again.run_once() == []
        again.close()
    finally:
        client.close()
    firing = {(e.key_kind, e.key) for e in events if e.state == "firing"}
    assert {("topic", "regulation_legal"), ("ticker", "TSLA")} <= firing
    assert set(receiver.accepted) == {e.idempotency_key for e in events} and receiver.duplicates == 0
    tsla = next(b for b in receiver.accepted.values() if b["key"] == "TSLA")
    assert tsla["documents"] and all(d["url"] and d["score"] < 0 for d in tsla["documents"])


def test_never_lost_means_redelivered_for_seven_days_and_a_4xx_is_final(
    ch_client: ClickHouseClient, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    from alerts.detector import AlertEvent, alert_id
    from alerts.outbox import Outbox

    now = datetime.now(UTC)

    def event(key: str) -> AlertEvent:
        return AlertEvent(
            alert_id=alert_id("market-spike", "market", key, T0), rule="market-spike", key_kind="market",
            key=key, state="firing", severity="warning", window_start=T0, window_end=T0, decided_at=T0,
            volume=10, negative=8, negative_share=0.8, baseline=0.1, z_score=5.0,
        )  # fmt: skip

    outbox = Outbox(ch_client, "live")
    for key, age in (("stale", timedelta(days=8)), ("recent", timedelta(days=6)), ("refused", timedelta(0))):
        e = event(key)
        body = orjson.dumps({"idempotency_key": e.idempotency_key, "key": key})
        outbox.store([(e, body)], detected_at=now - age)
    receiver.responder = lambda request: (422, {}) if b'"refused"' in request.body else None
    worker = AlertWorker(_settings(tmp_path, receiver), ch_client)
    worker.setup()
    for _ in range(2):  # a second poll re-sends nothing: delivered and 4xx-refused events are final
        worker.deliver_pending()
    worker.close()
    assert [orjson.loads(r.body)["key"] for r in receiver.requests] == ["recent", "refused"]
    assert [v["key"] for v in receiver.accepted.values()] == ["recent"]
