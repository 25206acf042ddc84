"""The demo / live report: a PNG a market-risk desk reads at a glance, where no Grafana runs.

Small multiples, one panel per key (the market, each topic, each alerted ticker) on a shared UTC
axis: the negative share pooled over the detector's own window, its baseline and threshold band,
alert episodes as labelled spans (`alerts.figures` has the style). Below: the top tickers by
negative stories and the most negative documents of each alert (what its webhook carried).

The numbers come from the queries the dashboards and the alert worker run: the panels from the
rollup the detector reads (`storage.queries.bucket_series`, equal per minute to the dashboard's
"Volume by topic" and "Negative share by topic"), alerts from the dashboard's annotation query,
the ticker table from its "Tickers by negative stories" query, documents from the webhook's query.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from alerts import figures
from alerts.buckets import bucket_series
from alerts.detector import BucketStats, detect
from alerts.rules import RuleSet, load_rules
from dashboards import panel_sql as q
from dashboards.macros import ALL, QueryContext, expand
from storage.client import ClickHouseClient
from storage.queries import most_negative

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TARGET_POINTS = 40
_TOP_TICKERS = 8
_SAMPLES_PER_ALERT = 3
_COLUMNS = 2


def report_context(client: ClickHouseClient, run_id: str) -> QueryContext:
    """The run's event-time range, with a bucket size that gives about 40 points (whole minutes)."""
    ((first, last),) = client.query(
        f"SELECT min(published_at), max(published_at) FROM {client.database}.classifications "
        "WHERE run_id = %(run)s",
        {"run": run_id},
    )
    if isinstance(first, datetime) and first.year < 2000:  # empty table: min() of nothing is the epoch
        raise ValueError(f"run {run_id!r} has no classified documents")
    first, last = first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)
    span = max((last - first).total_seconds(), 60.0)
    interval = max(60, int(span / _TARGET_POINTS) // 60 * 60)
    return QueryContext(
        time_from=first,
        time_to=last + timedelta(seconds=interval),
        interval_s=interval,
        variables={"run": run_id, "topic": ALL, "source": ALL},
    )


def run_panel_query(client: ClickHouseClient, query: q.PanelQuery, context: QueryContext) -> list[tuple]:
    """A dashboard panel's query, expanded as Grafana would, run on `client`."""
    return client.query(expand(query.render(client.database), context))


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert episode as the dashboard's annotation query returns it."""

    key_kind: str
    key: str
    severity: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"ALERT {self.severity} {self.start:%H:%M}–{self.end:%H:%M}"


def stored_alerts(client: ClickHouseClient, context: QueryContext) -> list[StoredAlert]:
    """Alert episodes of the run in the context's range (tags are `rule,severity,kind:key`)."""
    out = []
    for start, end, _text, tags in run_panel_query(client, q.ALERT_ANNOTATIONS, context):
        _rule, severity, key = tags.split(",", 2)
        kind, _, name = key.partition(":")
        out.append(StoredAlert(kind, name, severity, start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)))
    return out


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _panels(
    series: list[BucketStats], rules: RuleSet, topics: list[str], alerts: list[StoredAlert]
) -> list[figures.KeyPanel]:
    """Market, every topic, then each alerted ticker, each with the detector's view of it."""
    views = detect(series, rules, trace=True).views
    by_key: dict[tuple[str, str], list[BucketStats]] = {}
    for bucket in series:
        by_key.setdefault((bucket.key_kind, bucket.key), []).append(bucket)
    keys = [("market", "all")] if ("market", "all") in by_key else []
    keys += [("topic", t) for t in topics]
    keys += list(dict.fromkeys((a.key_kind, a.key) for a in alerts if a.key_kind == "ticker"))
    panels = []
    for kind, key in keys:
        rule = next((r for r in rules.rules if r.applies_to(kind, key)), None)
        view = views.get((rule.name, kind, key), []) if rule else []
        spans = [figures.Span(a.start, a.end, a.label) for a in alerts if (a.key_kind, a.key) == (kind, key)]
        title = "market (all stories)" if kind == "market" else f"{kind}: {key}"
        note = f"{len(spans)} alert{'s' if len(spans) > 1 else ''}" if spans else ""
        panels.append(figures.KeyPanel(title, view, by_key.get((kind, key), []),
                                       rule.window_buckets if rule else 1, spans, note=note,
                                       highlight=bool(spans)))  # fmt: skip
    return panels


def render_report(
    client: ClickHouseClient, run_id: str, out_path: Path, rules: RuleSet | None = None
) -> Path:
    """Draw the report of `run_id` under `rules` (default: the shipped rules) into a PNG."""
    return figures.save(report_figure(client, run_id, rules or load_rules()), Path(out_path))


def report_figure(client: ClickHouseClient, run_id: str, rules: RuleSet) -> Figure:
    """The report as a matplotlib Figure (a key panel is an axes titled with its key on the left)."""
    context = report_context(client, run_id)
    first = int(context.time_from.timestamp()) // rules.bucket_s * rules.bucket_s
    start = datetime.fromtimestamp(first, UTC)
    series = bucket_series(client, run_id, start, context.time_to, rules.bucket_s, rules.key_kinds)
    topics = [row[0] for row in run_panel_query(client, q.TOPICS, context)]
    alerts = stored_alerts(client, context)
    panels = _panels(series, rules, topics, alerts)
    tickers = run_panel_query(client, q.TICKER_RANKING, context)[:_TOP_TICKERS]
    samples = [
        (alert, most_negative(client, run_id, alert.key_kind, alert.key, alert.start, alert.end,
                              _SAMPLES_PER_ALERT))
        for alert in alerts
    ]  # fmt: skip

    rows = -(-len(panels) // _COLUMNS)
    width = 15.0
    doc_rows = sum(max(len(s), 1) for _, s in samples)
    table_height = 0.6 + 0.24 * max(doc_rows, len(tickers), 2)
    fig = figures.new_figure(width, 1.55 * rows + table_height + 1.3)
    grid = fig.add_gridspec(rows + 1, _COLUMNS * 3, height_ratios=[1.55] * rows + [table_height])
    time_range = (start, context.time_to)
    axes = []
    for i, panel in enumerate(panels):
        row, col = divmod(i, _COLUMNS)
        ax = fig.add_subplot(grid[row, col * 3 : col * 3 + 3], sharex=axes[0] if axes else None)
        figures.draw_key_panel(ax, panel, rules.bucket_s, time_range, width / _COLUMNS)
        figures.utc_axis(ax, with_label=row == rows - 1)
        if row != rows - 1 and i + _COLUMNS < len(panels):
            ax.tick_params(labelbottom=False)
        axes.append(ax)

    figures.draw_table(
        fig.add_subplot(grid[rows, 0:2]),
        "Top tickers by negative stories",
        ["ticker", "stories", "negative", "share"],
        [[t, str(n), str(k), f"{share:.0%}"] for t, n, k, share in tickers],
        [0.3, 0.22, 0.24, 0.2],
    )
    doc_rows_cells = []
    for alert, docs in samples:
        key = f"{alert.key_kind}:{alert.key}"
        for i, doc in enumerate(docs or [None]):
            head = [key, f"{alert.start:%H:%M}–{alert.end:%H:%M}"] if i == 0 else ["", ""]
            if doc is None:
                doc_rows_cells.append([*head, "", "-", ""])
                continue
            title = textwrap.shorten(doc.title or doc.url, 80)
            doc_rows_cells.append([*head, f"{_utc(doc.published_at):%H:%M}", title, f"{doc.score:+.2f}"])
    figures.draw_table(
        fig.add_subplot(grid[rows, 2:]),
        "Most negative documents per alert (as sent in its webhook)",
        ["alert key", "window", "time", "title", "score"],
        doc_rows_cells,
        [0.17, 0.13, 0.07, 0.56, 0.07],
        score_column=4,
    )
    figures.panel_legend(fig)
    span = f"{context.time_from:%Y-%m-%d %H:%M} – {context.time_to:%H:%M} UTC"
    fig.suptitle(
        f"finpulse · negative news by topic · run {run_id} · {span} · {len(alerts)} alerts",
        fontsize=14, fontweight="bold", x=0.01, ha="left",
    )  # fmt: skip
    return fig
