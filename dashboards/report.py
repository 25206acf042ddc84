"""A PNG of the main "Market sentiment" panels, drawn with matplotlib from the dashboards' own SQL.

For the embedded demo, where no Grafana runs: the same panel queries, expanded exactly as Grafana
would expand them (all topics and sources, the run's whole event-time range), run on the client.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboards import panel_sql as q
from dashboards.macros import ALL, QueryContext, expand
from storage.client import ClickHouseClient

_TARGET_POINTS = 40
_NEGATIVE_ROWS = 8


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


def _run(client: ClickHouseClient, query: q.PanelQuery, context: QueryContext) -> list[tuple]:
    return client.query(expand(query.render(client.database), context))


def _series(rows: list[tuple]) -> dict[str, tuple[list[datetime], list[float]]]:
    """Long (time, label, value) rows -> one (times, values) series per label."""
    series: dict[str, tuple[list[datetime], list[float]]] = defaultdict(lambda: ([], []))
    for time, label, value in rows:
        series[label][0].append(time)
        series[label][1].append(float(value))
    return dict(series)


def render_report(client: ClickHouseClient, run_id: str, out_path: Path) -> Path:
    """Draw sentiment index, negative share, volume with alert windows and the most negative documents."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    context = report_context(client, run_id)
    sentiment = _series(_run(client, q.SENTIMENT_BY_TOPIC, context))
    negative = _series(_run(client, q.NEGATIVE_SHARE_BY_TOPIC, context))
    volume = _series(_run(client, q.VOLUME_BY_TOPIC, context))
    alerts = _run(client, q.ALERT_ANNOTATIONS, context)
    worst = _run(client, q.MOST_NEGATIVE, context)[:_NEGATIVE_ROWS]

    topics = sorted(set(sentiment) | set(volume))
    colors = {topic: plt.get_cmap("tab10")(i % 10) for i, topic in enumerate(topics)}
    fig = plt.figure(figsize=(14, 15), layout="constrained")
    grid = fig.add_gridspec(4, 1, height_ratios=[3, 3, 3, 2.6])
    ax_index = fig.add_subplot(grid[0])
    ax_share = fig.add_subplot(grid[1], sharex=ax_index)
    ax_volume = fig.add_subplot(grid[2], sharex=ax_index)
    ax_table = fig.add_subplot(grid[3])

    for topic, (times, values) in sentiment.items():
        ax_index.plot(times, values, label=topic, color=colors[topic], linewidth=1.6)
    ax_index.axhline(0, color="grey", linewidth=0.8)
    ax_index.set(title="Sentiment index by topic (mean p_pos − p_neg)", ylim=(-1.05, 1.05))
    for topic, (times, values) in negative.items():
        ax_share.plot(times, values, label=topic, color=colors[topic], linewidth=1.6)
    ax_share.set(title="Negative share by topic (negative stories / stories)", ylim=(0, 1.02))
    ax_share.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))

    width = timedelta(seconds=context.interval_s * 0.9)
    bottom: dict[datetime, float] = defaultdict(float)
    for topic in topics:
        times, values = volume.get(topic, ([], []))
        ax_volume.bar(times, values, width=width, bottom=[bottom[t] for t in times], color=colors[topic],
                      label=topic, align="edge")  # fmt: skip
        for t, v in zip(times, values, strict=True):
            bottom[t] += v
    ax_volume.set(title=f"Volume by topic (distinct stories per {context.interval_s // 60} min)",
                  ylabel="stories", ylim=(0, max(bottom.values(), default=1) * 1.5))  # fmt: skip
    for start, end, text, _tags in alerts:
        for ax in (ax_index, ax_share, ax_volume):
            ax.axvspan(start, max(end, start + width), color="red", alpha=0.12)
        ax_volume.annotate(text.split(":")[0], (start, 0.97), xycoords=("data", "axes fraction"),
                           fontsize=8, color="darkred", rotation=90, va="top", ha="right")  # fmt: skip

    for ax in (ax_index, ax_share, ax_volume):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))
    ax_index.legend(loc="upper left", ncols=min(len(topics), 6), fontsize=9)
    if alerts:
        ax_volume.plot([], [], color="red", alpha=0.3, linewidth=8, label=f"alert window ({len(alerts)})")
    ax_volume.legend(loc="upper left", ncols=min(len(topics) + 1, 7), fontsize=9)

    ax_table.axis("off")
    ax_table.set_title("Most negative documents (one per story)", loc="left")
    cells = [
        [f"{time:%m-%d %H:%M}", source, topic, tickers, textwrap.shorten(title, 70), f"{score:+.2f}",
         textwrap.shorten(url, 45)]
        for time, source, topic, tickers, title, score, url in worst
    ]  # fmt: skip
    if cells:
        shown = ax_table.table(cellText=cells, colLabels=["published", "source", "topic", "tickers", "title",
                                                          "score", "url"],
                               colWidths=[0.09, 0.08, 0.08, 0.07, 0.4, 0.06, 0.22], loc="upper center",
                               cellLoc="left")  # fmt: skip
        shown.auto_set_font_size(False)
        shown.set_fontsize(8)
        shown.scale(1, 1.3)
    else:
        ax_table.text(0.5, 0.5, "no documents in range", ha="center", va="center")

    span = f"{context.time_from:%Y-%m-%d %H:%M} → {context.time_to:%H:%M} UTC"
    fig.suptitle(f"finpulse · market sentiment · run {run_id} · {span}", fontsize=14)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
