"""A real Prometheus (Debian's `prometheus`) scrapes a running stream worker, alert worker and HTTP
ingest while documents flow; every dashboard and rule expression returns data, and a stream worker
that stops storing, then restart-loops, fires its provisioned rule.

The rules are the provisioned ones with shorter windows and no hold time (RuleTimings below). This
test has its own ClickHouse server, because it stops it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from alerts.receiver import WebhookReceiver
from dashboards.prometheus import (
    JOBS,
    RULES_FILE,
    RuleTimings,
    alert_rules,
    dashboard_queries,
    pipeline_dashboard,
    rules_file,
    scrape_config,
    with_rate_interval,
)
from devstack.services import (
    LocalClickHouseServer,
    LocalPrometheus,
    ServiceError,
    free_port,
    settings_env,
    start_finpulse,
    start_stream_worker,
    terminate,
    wait_for_port,
)
from storage.client import connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from tests.integration.pipeline import kafka_settings, produce, wait_until, worker_env
from tests.integration.test_alerts_worker import RULES_YAML, SECRET, T0, _store_history

pytestmark = pytest.mark.integration

SCRAPE = "1s"
TIMINGS = RuleTimings(window="30s", restart_window="2m", stall_s=5, hold="0s")
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval would be at this scrape interval and range
TOKEN = "prometheus-test-token"
MALFORMED = [b"{not json", b"[1, 2, 3]", b'{"schema_version": 1}']


class Poster:
    """Posts one document every `interval_s` to HTTP ingest from a thread (the live traffic)."""

    def __init__(self, url: str, interval_s: float = 0.25) -> None:
        self._url, self._interval_s = url, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.accepted = 0
        self.errors: list[str] = []

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        number = 0
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                published = T0 + timedelta(minutes=46, seconds=number)
                doc = {"id": f"p{number}", "title": f"Acme shares fall after warning (item {number})",
                       "published_at": published.isoformat()}  # fmt: skip
                try:
                    reply = http.post(self._url, json=doc, headers=headers)
                    if reply.status_code == 202:
                        self.accepted += 1
                    else:
                        self.errors.append(f"{reply.status_code} {reply.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(str(exc))
                number += 1
                self._stop.wait(self._interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[LocalClickHouseServer]:
    server = LocalClickHouseServer(tmp_path / "clickhouse")
    try:
        server.start()
    except ServiceError as exc:
        pytest.fail(f"ClickHouse server did not start: {exc}")
    yield server
    server.remove()


def _values(result: list[dict]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def _ready(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)


def _firing(prometheus: LocalPrometheus, name: str) -> bool:
    return any(a["labels"]["alertname"] == name and a["state"] == "firing" for a in prometheus.alerts())


def test_prometheus_scrapes_the_pipeline_and_fires_the_stalled_and_restart_rules(
    broker, own_clickhouse: LocalClickHouseServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    clickhouse = ClickHouseSettings(mode="server", port=own_clickhouse.tcp_port, database="finpulse_prom")
    client = connect(clickhouse)
    migrate(client)
    _store_history(client, clickhouse)  # 45 minutes with two negative spikes: the alert worker fires
    client.close()
    kafka = kafka_settings(broker)
    produce(kafka, [], malformed=MALFORMED)  # creates the topics; bad input for the dead-letter metrics
    stream_port, alerts_port, ingest_port = free_port(), free_port(), free_port()
    stream_env = worker_env(
        kafka, clickhouse, tiny_model_dir,
        FINPULSE_STREAM_OPS_PORT=str(stream_port), FINPULSE_STREAM_STALL_AFTER_S=str(TIMINGS.stall_s),
        FINPULSE_STREAM_FETCH_MAX_WAIT_MS="50",
        # keep retrying while ClickHouse is down (instead of exiting), so the worker "stops storing"
        FINPULSE_CLICKHOUSE_INSERT_ATTEMPTS="10000", FINPULSE_CLICKHOUSE_INSERT_BACKOFF_S="0.2",
        FINPULSE_CLICKHOUSE_INSERT_BACKOFF_MAX_S="0.5",
    )  # fmt: skip
    receiver = WebhookReceiver(SECRET)
    receiver.start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_YAML)
    alerts_env = {
        "FINPULSE_CLICKHOUSE_MODE": "server", "FINPULSE_CLICKHOUSE_PORT": str(clickhouse.port),
        "FINPULSE_CLICKHOUSE_DATABASE": clickhouse.database, "FINPULSE_ALERTS_OPS_PORT": str(alerts_port),
        "FINPULSE_ALERTS_RULES_PATH": str(rules), "FINPULSE_ALERTS_GRACE_S": "0",
        "FINPULSE_ALERTS_LOOKBACK_S": "7200", "FINPULSE_ALERTS_POLL_INTERVAL_S": "0.5",
        "FINPULSE_ALERTS_WEBHOOKS": orjson.dumps([{"url": receiver.url, "secret": SECRET}]).decode(),
    }  # fmt: skip
    ingest_env = {**settings_env("FINPULSE_KAFKA_", kafka), "FINPULSE_INGEST_API_TOKEN": TOKEN}
    config = scrape_config(
        {JOBS["stream"]: [f"127.0.0.1:{stream_port}"], JOBS["alerts"]: [f"127.0.0.1:{alerts_port}"],
         JOBS["ingest"]: [f"127.0.0.1:{ingest_port}"]},
        interval=SCRAPE, rule_files=(RULES_FILE,),
    )  # fmt: skip
    prometheus = LocalPrometheus(
        yaml.safe_dump(config), {RULES_FILE: yaml.safe_dump(rules_file(TIMINGS))}, tmp_path / "prometheus"
    )
    logs = tmp_path
    processes = {
        "stream": start_stream_worker(stream_env, logs / "stream.log"),
        "alerts": start_finpulse(["alerts", "run"], alerts_env, logs / "alerts.log"),
        "ingest": start_finpulse(
            ["ingest", "serve", "--host", "127.0.0.1", "--port", str(ingest_port)],
            ingest_env,
            logs / "ingest.log",
        ),
    }
    poster = Poster(f"http://127.0.0.1:{ingest_port}/v1/docs")
    try:
        try:
            prometheus.start()
        except ServiceError as exc:
            pytest.fail(f"Prometheus did not start: {exc}")
        for port in (ingest_port, stream_port, alerts_port):
            wait_for_port(port, 120)
        poster.start()

        # --- healthy: every target up, documents stored, every expression returns numbers ---------
        def stored() -> float:
            return sum(_values(prometheus.query("finpulse_stream_documents_stored_total")))

        wait_until(lambda: stored() >= 20, 180, "documents stored, as scraped by Prometheus")
        wait_until(lambda: _values(prometheus.query('min(up{job=~"finpulse-.*"})')) == [1.0], 60, "all up")
        wait_until(lambda: receiver.accepted, 60, "the alert worker delivers a webhook")
        time.sleep(5)  # a few more scrapes, so every rate window holds several samples
        for name, port in (("stream", stream_port), ("alerts", alerts_port)):
            ready = _ready(port)
            assert ready.status_code == 200, (name, ready.text)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"status": "ok"}
        assert {c for c in ready.json()["checks"]} == {"clickhouse", "progress"}
        assert set(_ready(stream_port).json()["checks"]) == {"kafka", "clickhouse", "progress"}

        expressions = [(f"panel {title}", with_rate_interval(expr, RATE_INTERVAL))
                       for title, expr in dashboard_queries(pipeline_dashboard())]  # fmt: skip
        expressions += [
            (f"rule {rule.name}", signal) for rule in alert_rules(TIMINGS) for signal in rule.signals
        ]
        empty = [(where, expr) for where, expr in expressions if not prometheus.query(expr)]
        assert not empty, f"no data for: {empty}"
        nan = [(where, expr) for where, expr in expressions
               if not any(math.isfinite(v) for v in _values(prometheus.query(expr)))]  # fmt: skip
        assert not nan, f"only NaN/Inf for: {nan}"
        dead = prometheus.query('sum(finpulse_stream_dead_letters_total{reason=~"not_json|not_object"})')
        assert _values(dead) == [2.0]
        loaded = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"][0]["rules"]
        assert [r["name"] for r in loaded] == [rule.name for rule in alert_rules(TIMINGS)]
        assert all(r["health"] == "ok" for r in loaded), loaded
        assert not _firing(prometheus, "FinpulseStreamNotStoring")
        assert not _firing(prometheus, "FinpulseStreamRestartLoop")

        # --- the worker stops storing: ClickHouse goes away, documents keep coming ---------------
        retries_before = sum(_values(prometheus.query("finpulse_stream_insert_retries_total")))
        outage = time.monotonic()
        own_clickhouse.stop(grace_s=1)
        retries = "sum(finpulse_stream_insert_retries_total)"
        wait_until(lambda: _values(prometheus.query(retries)) > [retries_before], 30, "retries scraped",
                   interval_s=0.1)  # fmt: skip
        retries_seen_s = time.monotonic() - outage
        wait_until(lambda: _ready(stream_port).status_code == 503, 30, "stream worker not ready")
        assert not _ready(stream_port).json()["checks"]["clickhouse"]["ok"]
        wait_until(lambda: _firing(prometheus, "FinpulseStreamNotStoring"), 60, "FinpulseStreamNotStoring",
                   interval_s=0.2)  # fmt: skip
        not_storing_fired_s = time.monotonic() - outage
        print(
            f"retries scraped {retries_seen_s:.1f}s, NotStoring fired {not_storing_fired_s:.1f}s after outage"
        )
        own_clickhouse.start()
        recovered = stored()
        wait_until(lambda: stored() > recovered, 120, "storing again after ClickHouse is back")

        # --- the worker restart-loops: killed twice right after start ----------------------------
        def start_time() -> list[float]:
            return _values(prometheus.query(f'process_start_time_seconds{{job="{JOBS["stream"]}"}}'))

        for _ in range(2):
            previous = start_time()
            processes["stream"].kill()
            processes["stream"].wait()
            processes["stream"] = start_stream_worker(stream_env, logs / "stream.log")
            wait_until(lambda previous=previous: start_time() not in ([], previous), 120, "a new start time",
                       interval_s=0.2)  # fmt: skip
        loop_seen = time.monotonic()
        wait_until(lambda: _firing(prometheus, "FinpulseStreamRestartLoop"), 30, "FinpulseStreamRestartLoop",
                   interval_s=0.2)  # fmt: skip
        print(f"RestartLoop firing {time.monotonic() - loop_seen:.1f}s after the second restart was scraped")
        assert not poster.errors, poster.errors[:5]
    finally:
        poster.stop()
        for process in processes.values():
            terminate(process)
        prometheus.stop()
        receiver.stop()
