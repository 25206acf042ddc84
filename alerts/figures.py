"""The one place that draws finpulse pictures (matplotlib): the demo/live report and the backtest report.

Style, so every picture reads the same way:

- Sentiment colours: negative red, neutral grey, positive green (`SENTIMENT_COLORS`); counts of
  negative stories are red, counts of all stories grey.
- A key's panel (`draw_key_panel`) shows what the alert detector saw: the negative share pooled over
  the rule's own window (dark line), the detector's baseline (dashed) and the band up to the share
  that would fire (light grey, "normal range"); where the share breaks through the band the gap is
  filled red. Alert episodes are orange spans with a label on top (labels stack, never overlap);
  planted or labelled events are blue bars along the bottom. Stories per bucket are faint bars on a
  right-hand axis.
- Shares are 0-100 % on a shared scale, so panels compare at a glance; times are UTC on every axis
  (`utc_axis`), labelled "UTC".

Lives in `alerts/` because the panels draw the detector's view; `dashboards/` imports it (imports
follow the data flow). No I/O beyond `save`.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.detector import BucketStats, BucketView

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SENTIMENT_COLORS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}
SHARE_COLOR = "#1f2d3d"
THIN_SHARE_COLOR = "#c8ced3"
BASELINE_COLOR = "#5d6d7e"
NORMAL_BAND_COLOR = "#d5dbdb"
BREACH_COLOR = SENTIMENT_COLORS["negative"]
ALERT_COLOR = "#e67e22"
ALERT_TEXT_COLOR = "#a04000"
ALERTED_PANEL_COLOR = "#fdf2e9"
EVENT_COLOR = "#2e86c1"
VOLUME_COLOR = "#e5e8e8"
NEGATIVE_VOLUME_COLOR = "#f5b7b1"
FONT_SIZE = 9


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled time range on a panel: an alert episode or a labelled event."""

    start: datetime
    end: datetime
    label: str = ""
    decided_at: datetime | None = None


@dataclass
class KeyPanel:
    """Everything one key's panel shows (see the module docstring)."""

    title: str
    views: Sequence[BucketView]
    buckets: Sequence[BucketStats] = ()
    window: int = 1
    alerts: list[Span] = field(default_factory=list)
    events: list[Span] = field(default_factory=list)
    note: str = ""  # top right, e.g. "2 alerts" or "1 missed"
    highlight: bool = False  # tinted, so the panel stands out before anything in it is read


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    """A Figure in the finpulse style (no pyplot: no global state, safe in threads)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    fig.set_facecolor("white")
    return fig


def utc_axis(ax: Axes, with_label: bool = True) -> None:
    """Hours and minutes in UTC on the x axis."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    if with_label:
        ax.set_xlabel("time (UTC)", fontsize=FONT_SIZE - 1)


def _dense(views: Sequence[BucketView], bucket_s: int) -> list[BucketView | None]:
    """Views on a gap-free bucket grid (None where the detector judged nothing: the key was idle)."""
    if not views:
        return []
    by_start = {int(v.start.timestamp()): v for v in views}
    first, last = min(by_start), max(by_start)
    return [by_start.get(t) for t in range(first, last + bucket_s, bucket_s)]


@dataclass
class _Lines:
    times: list[datetime] = field(default_factory=list)
    share: list[float] = field(default_factory=list)  # every bucket with pooled stories
    judged: list[float] = field(default_factory=list)  # only where the detector could fire
    baseline: list[float] = field(default_factory=list)  # carried forward between judged buckets
    threshold: list[float] = field(default_factory=list)


def _lines(views: Sequence[BucketView], bucket_s: int) -> _Lines:
    """The panel's lines at bucket ends, NaN where undefined."""
    nan = math.nan
    out, baseline = _Lines(), nan
    start = views[0].start if views else None
    for i, view in enumerate(_dense(views, bucket_s)):
        out.times.append(start + timedelta(seconds=bucket_s * (i + 1)))
        if view is None:  # idle key: nothing judged, the baseline line breaks
            baseline = nan
            for line in (out.share, out.judged, out.baseline, out.threshold):
                line.append(nan)
            continue
        share = view.negative / view.volume if view.volume else nan
        baseline = baseline if view.baseline is None else view.baseline
        out.share.append(share)
        out.judged.append(nan if view.threshold is None else share)
        out.baseline.append(baseline)
        out.threshold.append(nan if view.threshold is None else min(view.threshold, 1.0))
    return out


def _lanes(spans: Sequence[Span], char_s: float) -> list[int]:
    """Greedy label rows: a label goes to the first row where it clears the previous label's text."""
    row_ends: list[float] = []
    lanes = []
    for span in spans:
        start = span.start.timestamp()
        width = max(len(span.label) * char_s, span.end.timestamp() - start)
        lane = next((i for i, end in enumerate(row_ends) if start >= end), len(row_ends))
        if lane == len(row_ends):
            row_ends.append(0.0)
        row_ends[lane] = start + width
        lanes.append(lane)
    return lanes


def draw_key_panel(
    ax: Axes, panel: KeyPanel, bucket_s: int, time_range: tuple[datetime, datetime], width_in: float
) -> None:
    """Draw one key's detector view on `ax` (style in the module docstring)."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    counts = ax.twinx()
    if panel.buckets:
        middles = [b.start + timedelta(seconds=bucket_s / 2) for b in panel.buckets]
        width = timedelta(seconds=bucket_s * 0.9)
        counts.bar(middles, [b.volume for b in panel.buckets], width=width, color=VOLUME_COLOR, zorder=0)
        counts.bar(middles, [b.negative for b in panel.buckets], width=width, color=NEGATIVE_VOLUME_COLOR)
        counts.set_ylim(0, max(b.volume for b in panel.buckets) * 3)
    counts.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    counts.tick_params(labelsize=FONT_SIZE - 2, colors="#aab7b8", length=2)
    for side in ("top", "right", "left"):
        counts.spines[side].set_visible(False)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)

    lines = _lines(panel.views, bucket_s)
    if lines.times:
        times, step = lines.times, {"step": "pre"}
        ax.fill_between(times, lines.baseline, lines.threshold, color=NORMAL_BAND_COLOR, linewidth=0, **step)
        ax.step(
            times, lines.baseline, where="pre", color=BASELINE_COLOR, linewidth=0.9, linestyle=(0, (3, 2))
        )
        breach = [s > t for s, t in zip(lines.judged, lines.threshold, strict=True)]  # NaN compares False
        ax.fill_between(times, lines.threshold, lines.judged, where=breach, color=BREACH_COLOR, alpha=0.75,
                        linewidth=0, **step)  # fmt: skip
        # too few stories to judge: faint, so thin topics do not look like spikes
        ax.step(times, lines.share, where="pre", color=THIN_SHARE_COLOR, linewidth=0.8)
        ax.step(times, lines.judged, where="pre", color=SHARE_COLOR, linewidth=1.4)
    else:
        ax.text(0.5, 0.5, "no stories", transform=ax.transAxes, ha="center", va="center", color="grey")

    start, end = time_range
    char_s = (end - start).total_seconds() * (FONT_SIZE - 1.5) * 0.62 / 72 / max(width_in, 1.0)
    alerts = sorted(panel.alerts, key=lambda s: s.start)
    lanes = _lanes(alerts, char_s)
    top = 1.22 + 0.16 * max(lanes, default=0)
    for span, lane in zip(alerts, lanes, strict=True):
        ax.axvspan(span.start, span.end, color=ALERT_COLOR, alpha=0.22, linewidth=0)
        if span.decided_at is not None:
            ax.axvline(span.decided_at, color=ALERT_COLOR, linewidth=1.2)
        ax.text(span.start, top - 0.16 * lane, span.label, fontsize=FONT_SIZE - 1.5, color=ALERT_TEXT_COLOR,
                va="top", ha="left", fontweight="bold", clip_on=False)  # fmt: skip
    for span in panel.events:
        ax.axvspan(span.start, span.end, ymax=0.07, color=EVENT_COLOR, linewidth=0)
        if span.label:
            ax.text(span.start, 0.09, span.label, fontsize=FONT_SIZE - 2, color=EVENT_COLOR, va="bottom")
    ax.set_xlim(start, end)
    ax.set_ylim(0, top + 0.02 if alerts else 1.05)
    ax.set_yticks([0, 0.5, 1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(labelsize=FONT_SIZE - 1, length=2)
    ax.grid(axis="y", alpha=0.25)
    ax.set_title(panel.title, fontsize=FONT_SIZE + 1, loc="left", fontweight="bold")
    if panel.highlight:
        counts.set_facecolor(ALERTED_PANEL_COLOR)
    if panel.note:
        ax.set_title(
            panel.note, fontsize=FONT_SIZE + 1, loc="right", fontweight="bold", color=ALERT_TEXT_COLOR
        )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def panel_legend(fig: Figure) -> None:
    """The key to every panel, once per figure."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=SHARE_COLOR, linewidth=1.4, label="negative share (detector window)"),
        Line2D([], [], color=THIN_SHARE_COLOR, linewidth=0.8, label="same, too few stories to judge"),
        Line2D([], [], color=BASELINE_COLOR, linewidth=0.9, linestyle=(0, (3, 2)), label="baseline"),
        Patch(color=NORMAL_BAND_COLOR, label="normal range (up to the firing threshold)"),
        Patch(color=BREACH_COLOR, alpha=0.75, label="above threshold"),
        Patch(color=ALERT_COLOR, alpha=0.4, label="alert episode"),
        Patch(color=EVENT_COLOR, label="labelled event"),
        Patch(color=NEGATIVE_VOLUME_COLOR, label="negative stories / bucket (right axis)"),
        Patch(color=VOLUME_COLOR, label="all stories / bucket"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=FONT_SIZE - 1, frameon=False)


def draw_table(
    ax: Axes,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    col_widths: Sequence[float],
    score_column: int | None = None,
) -> None:
    """A left-aligned table; cells of `score_column` (a signed sentiment score) take its sentiment colour."""
    ax.axis("off")
    ax.set_title(title, fontsize=FONT_SIZE + 1, loc="left", fontweight="bold")
    if not rows:
        ax.text(0.0, 0.85, "none", fontsize=FONT_SIZE, color="grey", transform=ax.transAxes)
        return
    cells = [["".join(c for c in cell if ord(c) <= 0xFFFF) for cell in row] for row in rows]  # no emoji font
    table = ax.table(cellText=cells, colLabels=list(header), colWidths=list(col_widths),
                     loc="upper left", cellLoc="left", colLoc="left", edges="horizontal")  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(FONT_SIZE - 1)
    table.scale(1, 1.25)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("#d5d8dc")
        cell.get_text().set_parse_math(False)  # headlines are full of $TICKER and $20 billion
        if row == 0:
            cell.set_text_props(fontweight="bold")
        elif col == score_column:
            cell.get_text().set_color(score_color(float(rows[row - 1][col])))


def score_color(score: float) -> str:
    """The sentiment colour of a signed score (p_pos − p_neg)."""
    if score <= -0.2:
        return SENTIMENT_COLORS["negative"]
    return SENTIMENT_COLORS["positive"] if score >= 0.2 else SENTIMENT_COLORS["neutral"]


def save(fig: Figure, path: Path) -> Path:
    """Write the figure as a PNG (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def png_data_uri(fig: Figure) -> str:
    """The figure as an inline `data:image/png;base64,...` URI (for self-contained HTML)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
