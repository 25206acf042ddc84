"""Pipeline health from Prometheus: the "finpulse pipeline" dashboard, the alert rules and the scrape
configuration, generated from Python like the ClickHouse dashboards (see generate.py).

Every PromQL expression is written once here; the Prometheus integration test evaluates each of them
against a real Prometheus scraping the three processes. Grafana's `$__rate_interval` is the only
dashboard variable; the test substitutes it (`with_rate_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.model import Json, dashboard, stat_panel, table_panel, timeseries_panel

PROMETHEUS_UID = "finpulse-prometheus"
PROMETHEUS = {"type": "prometheus", "uid": PROMETHEUS_UID}
JOBS = {"stream": "finpulse-stream", "alerts": "finpulse-alerts", "ingest": "finpulse-ingest"}
# Where compose mounts dashboards/prometheus inside the Prometheus container.
CONTAINER_RULES_DIR = "/etc/prometheus/finpulse"
RULES_FILE = "finpulse-rules.yml"
RATE = "$__rate_interval"
STREAM = f'job="{JOBS["stream"]}"'


@dataclass(frozen=True)
class PromQuery:
    """One PromQL expression of a panel; `legend` is Grafana's legendFormat."""

    expr: str
    legend: str = ""
    instant: bool = False

    def target(self, ref_id: str) -> Json:
        """The Grafana Prometheus query."""
        query: Json = {"refId": ref_id, "datasource": PROMETHEUS, "expr": self.expr}
        if self.legend:
            query["legendFormat"] = self.legend
        if self.instant:
            query.update(instant=True, range=False, format="table")
        else:
            query.update(instant=False, range=True)
        return query


def with_rate_interval(expr: str, interval: str) -> str:
    """The expression as Grafana sends it, with `$__rate_interval` replaced."""
    return expr.replace(RATE, interval)


def _rate(metric: str, by: str = "", interval: str = RATE) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}[{interval}]))"


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{RATE}])))"


def _targets(*queries: PromQuery) -> list[Json]:
    return [query.target(chr(ord("A") + i)) for i, query in enumerate(queries)]


def _stat(title: str, grid: tuple[int, int, int, int], query: PromQuery, unit: str = "short", **kw) -> Json:
    return stat_panel(title, _targets(query), PROMETHEUS, grid, unit=unit, **kw)


def _series(
    title: str, grid: tuple[int, int, int, int], *queries: PromQuery, unit: str = "short", **kw
) -> Json:
    return timeseries_panel(title, _targets(*queries), PROMETHEUS, grid, unit=unit, **kw)


def pipeline_dashboard() -> Json:
    """Liveness, throughput, lag, dead letters, latencies, retries, restarts and alert delivery."""
    panels = [
        _stat("Stream workers up", (0, 0, 4, 4), PromQuery(f"sum(up{{{STREAM}}})")),
        _stat("Consumer lag", (4, 0, 4, 4), PromQuery("sum(finpulse_stream_consumer_lag)"),
              description="Messages read or waiting in Kafka but not stored yet, all partitions."),
        _stat("Since last stored batch", (8, 0, 4, 4),
              PromQuery("time() - max(finpulse_stream_last_batch_timestamp_seconds)"), unit="s"),
        _stat("Since last alert poll", (12, 0, 4, 4),
              PromQuery("time() - max(finpulse_alerts_last_successful_poll_timestamp_seconds)"), unit="s"),
        _stat("Alert episodes open", (16, 0, 4, 4), PromQuery("sum(finpulse_alerts_episodes_open)")),
        _stat("Restarts (15 min)", (20, 0, 4, 4),
              PromQuery('sum(changes(process_start_time_seconds{job=~"finpulse-.*"}[15m]))'),
              description="Process restarts of every finpulse job; more than one is a restart loop."),
        _series("Documents/s", (0, 4, 12, 8),
                PromQuery(_rate("finpulse_ingest_documents_accepted_total"), "ingest accepted"),
                PromQuery(_rate("finpulse_stream_documents_received_total"), "stream received"),
                PromQuery(_rate("finpulse_stream_documents_stored_total"), "stored"), unit="reqps"),
        _series("Consumer lag by partition", (12, 4, 12, 8),
                PromQuery("sum by (topic, partition) (finpulse_stream_consumer_lag)",
                          "{{topic}}/{{partition}}")),
        _series("Dead letters/s by reason", (0, 12, 12, 8),
                PromQuery(_rate("finpulse_stream_dead_letters_total", "reason"), "{{reason}}"), unit="reqps",
                bars=True),
        _series("Batch size", (12, 12, 12, 8),
                PromQuery(_quantile(0.5, "finpulse_stream_batch_size"), "p50"),
                PromQuery(_quantile(0.95, "finpulse_stream_batch_size"), "p95")),
        _series("Inference and insert time per batch (p95)", (0, 20, 12, 8),
                PromQuery(_quantile(0.95, "finpulse_stream_inference_seconds"), "inference"),
                PromQuery(_quantile(0.95, "finpulse_stream_insert_seconds"), "insert"), unit="s"),
        _series("Published → stored", (12, 20, 12, 8),
                PromQuery(_quantile(0.5, "finpulse_stream_publish_to_stored_seconds"), "p50"),
                PromQuery(_quantile(0.95, "finpulse_stream_publish_to_stored_seconds"), "p95"), unit="s",
                description="Event time to ClickHouse, live documents."),
        _series("ClickHouse insert retries/s", (0, 28, 12, 8),
                PromQuery(_rate("finpulse_stream_insert_retries_total"), "retries"), unit="reqps"),
        _series("Ingest requests/s by status", (12, 28, 12, 8),
                PromQuery(_rate("finpulse_ingest_requests_total", "status"), "{{status}}"), unit="reqps"),
        _series("Alert polls/s", (0, 36, 12, 8),
                PromQuery(_rate("finpulse_alerts_polls_total", "outcome"), "{{outcome}}"), unit="reqps"),
        _series("Alert deliveries/s", (12, 36, 12, 8),
                PromQuery(_rate("finpulse_alerts_delivery_attempts_total", "endpoint, outcome"),
                          "{{endpoint}} {{outcome}}"), unit="reqps", bars=True),
        table_panel("Model in use", _targets(PromQuery("finpulse_model_info", instant=True)), PROMETHEUS,
                    (0, 44, 24, 5)),
    ]  # fmt: skip
    return dashboard(
        "finpulse-pipeline-metrics",
        "finpulse · Pipeline",
        "Pipeline health from Prometheus: workers up, throughput, consumer lag, dead letters, latencies, "
        "retries, restarts and alert delivery (docs/operations.md explains each alarm).",
        panels,
        [],
        [],
        time_from="now-1h",
    )


def dashboard_queries(model: Json) -> list[tuple[str, str]]:
    """(panel title, expr) of every target of a Prometheus dashboard."""
    return [
        (panel["title"], target["expr"]) for panel in model["panels"] for target in panel.get("targets", [])
    ]


@dataclass(frozen=True)
class RuleTimings:
    """Windows and hold times of the alert rules (the Prometheus test shortens them)."""

    window: str = "5m"
    restart_window: str = "15m"
    stall_s: int = 600
    hold: str = "2m"


@dataclass(frozen=True)
class AlertRule:
    """A Prometheus alerting rule; every expression in `signals` returns data on a healthy pipeline."""

    name: str
    expr: str
    signals: tuple[str, ...]
    severity: str
    summary: str
    hold: str

    def to_yaml(self) -> Json:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.hold,
            "labels": {"severity": self.severity, "team": "finpulse"},
            "annotations": {"summary": self.summary, "runbook": f"docs/operations.md#{self.name.lower()}"},
        }


def alert_rules(timings: RuleTimings = RuleTimings()) -> list[AlertRule]:
    """The stalled-pipeline, restart-loop, lag, dead-letter, target-down and alert-worker rules."""
    t = timings
    lag = "sum by (instance) (finpulse_stream_consumer_lag)"
    since_batch = "time() - max by (instance) (finpulse_stream_last_batch_timestamp_seconds)"
    job_lag = f"sum by (job) (finpulse_stream_consumer_lag{{{STREAM}}})"
    lag_trend = f"deriv({job_lag}[{t.window}:])"
    restarts = f"changes(process_start_time_seconds{{{STREAM}}}[{t.restart_window}])"
    dead = _rate("finpulse_stream_dead_letters_total", "job", t.window)
    received = _rate("finpulse_stream_documents_received_total", "job", t.window)
    up = 'up{job=~"finpulse-.*"}'
    failures = "finpulse_alerts_consecutive_poll_failures"
    since_poll = "time() - finpulse_alerts_last_successful_poll_timestamp_seconds"
    return [
        AlertRule("FinpulseStreamNotStoring", f"({lag} > 0) and on (instance) ({since_batch} > {t.stall_s})",
                  (lag, since_batch), "critical",
                  "Stream worker {{ $labels.instance }} has messages waiting and stored no batch for "
                  f"{t.stall_s}s.", t.hold),
        AlertRule("FinpulseStreamRestartLoop", f"{restarts} > 1", (restarts,), "critical",
                  "Stream worker {{ $labels.instance }} restarted {{ $value }} times in "
                  f"{t.restart_window}.", "0s"),
        AlertRule("FinpulseConsumerLagGrowing", f"({job_lag} > 1000) and ({lag_trend} > 0)",
                  (job_lag, lag_trend), "warning", "Consumer lag is {{ $value }} messages and growing.",
                  t.hold),
        AlertRule("FinpulseDeadLetterRate", f"({dead}) / ({received}) > 0.05", (dead, received), "warning",
                  f"More than 5% of the input went to the dead-letter topic over {t.window}.", t.hold),
        AlertRule("FinpulseTargetDown", f"{up} == 0", (up,), "critical",
                  "{{ $labels.job }} at {{ $labels.instance }} does not answer scrapes.", t.hold),
        AlertRule("FinpulseAlertWorkerFailing", f"({failures} >= 3) or ({since_poll} > {t.stall_s})",
                  (failures, since_poll), "critical",
                  "The alert worker has not completed a poll recently (ClickHouse unreachable?).", t.hold),
    ]  # fmt: skip


def rules_file(timings: RuleTimings = RuleTimings()) -> Json:
    """The Prometheus rule file."""
    return {"groups": [{"name": "finpulse", "rules": [rule.to_yaml() for rule in alert_rules(timings)]}]}


def scrape_config(
    static: dict[str, list[str]],
    dns: dict[str, tuple[str, int]] | None = None,
    interval: str = "15s",
    rule_files: tuple[str, ...] = (f"{CONTAINER_RULES_DIR}/{RULES_FILE}",),
) -> Json:
    """A prometheus.yml: `static` job -> host:port targets, `dns` job -> (name, port) found by DNS
    (every replica of a scaled compose service)."""
    jobs = [{"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in static.items()]
    for job, (name, port) in (dns or {}).items():
        jobs.append({"job_name": job, "dns_sd_configs": [{"names": [name], "type": "A", "port": port}]})
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": list(rule_files),
        "scrape_configs": sorted(jobs, key=lambda job: job["job_name"]),
    }


def compose_scrape_config() -> Json:
    """docker-compose's Prometheus: stream replicas by DNS, the alert worker and HTTP ingest."""
    return scrape_config(
        {JOBS["alerts"]: ["alerts:9465"], JOBS["ingest"]: ["ingest-http:8080"]},
        {JOBS["stream"]: ("stream", 9464)},
    )


def datasource() -> Json:
    """Grafana's Prometheus data source (compose service `prometheus`)."""
    return {"name": "Prometheus (finpulse)", "type": "prometheus", "uid": PROMETHEUS_UID, "access": "proxy",
            "url": "http://prometheus:9090", "isDefault": False}  # fmt: skip
