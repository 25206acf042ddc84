"""The output of `finpulse backtest --report DIR`: alerts.jsonl, summary.json, PNGs and report.html.

`report.html` is one self-contained page (pictures inline, no scripts, no links out) that opens
offline: precision / recall / delay per rule and per key, one panel per rule and key with what the
detector saw (`alerts.figures`: share, baseline, threshold band, labelled events, alert episodes and
their firing decisions), and with `--grid` and events the grid as a heat map. The same pictures are
written next to it as series.png and grid.png.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from alerts import figures
from alerts.backtest import BacktestResult, episodes, key_label, score
from alerts.detector import AlertEvent, BucketStats, detect
from alerts.rules import Rule
from ingest.schema import iso_utc

_MAX_PANELS = 8
_SCORE_COLUMNS = ("alerts", "true_alerts", "coincident_alerts", "events", "detected", "precision", "recall",
                  "delay_s_mean", "lead_time_s_mean")  # fmt: skip


def alert_record(event: AlertEvent) -> dict[str, Any]:
    """One `alerts.jsonl` line: `key` is `kind:name`, as in events files."""
    return {
        "alert_id": event.alert_id,
        "key": key_label(event.key_kind, event.key),
        "key_kind": event.key_kind,
        "rule": event.rule,
        "state": event.state,
        "severity": event.severity,
        "window_start": iso_utc(event.window_start),
        "window_end": iso_utc(event.window_end),
        "decided_at": iso_utc(event.decided_at),
        "volume": event.volume,
        "negative": event.negative,
        "negative_share": round(event.negative_share, 6),
        "baseline": round(event.baseline, 6),
        "z_score": round(event.z_score, 4),
    }


def per_rule_scores(result: BacktestResult) -> dict[str, dict[str, Any]]:
    """Each rule's alerts scored against the labelled events of the keys it watches."""
    return {
        rule.name: score(
            [e for e in result.events if e.rule == rule.name],
            [e for e in result.labelled if rule.applies_to(e.key_kind, e.key)],
        ).overall.to_json()
        for rule in result.rules.rules
    }


def summary(result: BacktestResult, series: Sequence[BucketStats], info: dict[str, Any]) -> dict[str, Any]:
    """The `summary.json` document."""
    eps = episodes(result.events)
    starts = [b.start for b in series]
    counts = {
        "buckets": len(series),
        "keys": len({(b.key_kind, b.key) for b in series}),
        "alert_events": len(result.events),
        "firing": sum(e.state == "firing" for e in result.events),
        "resolved": sum(e.state == "resolved" for e in result.events),
        "by_severity": dict(sorted(_count(ep.firing.severity for ep in eps).items())),
        "by_key": dict(sorted(_count(ep.label for ep in eps).items())),
        "labelled_events": len(result.labelled),
    }
    out: dict[str, Any] = {
        **info,
        "rules_fingerprint": result.rules.fingerprint(),
        "bucket_s": result.rules.bucket_s,
        "range": {"start": iso_utc(min(starts)), "end": iso_utc(max(starts))} if starts else None,
        "counts": counts,
    }
    if result.scores is not None:
        out["metrics"] = {**result.scores.to_json(), "per_rule": per_rule_scores(result)}
    if result.grid:
        out["grid"] = [row.to_json() for row in result.grid]
    return out


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def write_report(
    out_dir: Path, result: BacktestResult, series: Sequence[BucketStats], info: dict[str, Any]
) -> dict[str, Any]:
    """Write alerts.jsonl, summary.json, series.png, grid.png (with a grid and events) and report.html
    into `out_dir`; return the summary."""
    import orjson

    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "alerts.jsonl").open("wb") as handle:
        for event in result.events:
            handle.write(orjson.dumps(alert_record(event)) + b"\n")
    doc = summary(result, series, info)
    (out_dir / "summary.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    pictures = {"series": series_figure(result, series)}
    (out_dir / "grid.png").unlink(missing_ok=True)  # from an earlier report in the same folder
    if result.grid and result.scores is not None:
        pictures["grid"] = grid_figure(result)
    inline = {}
    for name, fig in pictures.items():
        figures.save(fig, out_dir / f"{name}.png")
        inline[name] = figures.png_data_uri(fig)
    (out_dir / "report.html").write_text(_html(doc, result, inline), encoding="utf-8")
    return doc


def plotted_panels(result: BacktestResult, series: Sequence[BucketStats]) -> list[tuple[Rule, str, str]]:
    """(rule, kind, key) worth a panel: labelled keys, then alerted ones, then the market (at most 8)."""
    present = {(b.key_kind, b.key) for b in series}
    wanted = [(e.key_kind, e.key) for e in result.labelled]
    wanted += [(ep.firing.key_kind, ep.firing.key) for ep in episodes(result.events)]
    wanted.append(("market", "all"))
    labelled = {(e.key_kind, e.key) for e in result.labelled}
    out = []
    for kind, key in dict.fromkeys(wanted):
        if (kind, key) in present or (kind, key) in labelled:
            out += [(rule, kind, key) for rule in result.rules.rules if rule.applies_to(kind, key)]
    return out[:_MAX_PANELS]


def series_figure(result: BacktestResult, series: Sequence[BucketStats]):
    """One panel per rule and key: what the detector saw, the labelled events and the alerts."""
    bucket_s = result.rules.bucket_s
    views = detect(series, result.rules, trace=True).views
    by_key: dict[tuple[str, str], list[BucketStats]] = {}
    for b in series:
        by_key.setdefault((b.key_kind, b.key), []).append(b)
    panels = plotted_panels(result, series)
    starts = [b.start for b in series] + [e.start for e in result.labelled]
    ends = [b.start for b in series] + [e.end for e in result.labelled]
    time_range = (min(starts), max(ends)) if starts else (datetime.now(), datetime.now())
    width = 11.0
    fig = figures.new_figure(width, 1.9 * max(len(panels), 1) + 0.9)
    axes = fig.subplots(max(len(panels), 1), 1, sharex=True, squeeze=False)[:, 0]
    eps = episodes(result.events)
    for ax, (rule, kind, key) in zip(axes, panels, strict=False):
        own = [ep for ep in eps if ep.firing.rule == rule.name and ep.label == key_label(kind, key)]
        labelled = [e for e in result.labelled if (e.key_kind, e.key) == (kind, key)]
        alerts = [
            figures.Span(ep.firing.window_start, ep.window_end,
                         f"{ep.firing.severity} {ep.firing.decided_at:%H:%M}", ep.firing.decided_at)
            for ep in own
        ]  # fmt: skip
        events = [figures.Span(e.start, e.end, "labelled event") for e in labelled]
        note, caught = "", True
        if result.labelled:  # without labels there is nothing to be right or wrong about
            missed = sum(not any(ep.overlaps(e) for ep in own) for e in labelled)
            false = sum(not any(ep.overlaps(e) for e in labelled) for ep in own)
            caught = not (missed or false)
            note = ", ".join(f"{n} {what}" for n, what in ((missed, "missed"), (false, "false alarm")) if n)
            note = note.replace("false alarm", "false alarms") if false > 1 else note
        panel = figures.KeyPanel(
            f"{key_label(kind, key)}  ·  rule {rule.name}", views.get((rule.name, kind, key), []),
            by_key.get((kind, key), []), rule.window_buckets, alerts, events, note, not caught,
        )  # fmt: skip
        figures.draw_key_panel(ax, panel, bucket_s, time_range, width)
        figures.utc_axis(ax, with_label=ax is axes[-1])
    figures.panel_legend(fig)
    return fig


def _grid_layout(result: BacktestResult) -> tuple[list[str], list[Any], list[dict[str, Any]]]:
    """Heat-map axes: columns are the last grid parameter's values, rows the other parameters'."""
    names = list(result.grid[0].params)
    last = names[-1] if names else ""
    columns = list(dict.fromkeys(row.params.get(last) for row in result.grid))
    rows = list(dict.fromkeys(tuple((n, row.params[n]) for n in names[:-1]) for row in result.grid))
    return [last], columns, [dict(r) for r in rows]


def grid_figure(result: BacktestResult):
    """The grid as a heat map of F1 (overall), each cell labelled with precision, recall and alerts."""
    import numpy as np

    (column_name,), columns, rows = _grid_layout(result)
    cells: dict[tuple[int, int], Any] = {}
    for grid_row in result.grid:
        r = rows.index({k: v for k, v in grid_row.params.items() if k != column_name})
        cells[(r, columns.index(grid_row.params.get(column_name)))] = grid_row
    values = np.full((len(rows), len(columns)), np.nan)
    fig = figures.new_figure(1.6 + 1.5 * len(columns), 1.2 + 0.75 * len(rows))
    ax = fig.subplots()
    for (r, c), grid_row in cells.items():
        if grid_row.scores is None:
            ax.text(c, r, "invalid", ha="center", va="center", fontsize=8, color="grey")
            continue
        s = grid_row.scores.overall
        p, rec = s.precision or 0.0, s.recall or 0.0
        values[r, c] = 2 * p * rec / (p + rec) if p + rec else 0.0
        ax.text(c, r, f"P {p:.2f}  R {rec:.2f}\n{s.alerts} alerts", ha="center", va="center", fontsize=8)
    image = ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, label="F1 (precision, recall)", shrink=0.9)
    ax.set_xticks(range(len(columns)), [str(v) for v in columns])
    ax.set_xlabel(column_name)
    ax.set_yticks(
        range(len(rows)), [" ".join(f"{k}={v}" for k, v in r.items()) or "rules file" for r in rows]
    )
    ax.set_title("Parameter grid: F1 per combination", loc="left", fontsize=figures.FONT_SIZE + 1)
    return fig


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return escape(str(value))


def _score_table(rows: dict[str, dict[str, Any] | None], caption: str) -> str:
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in ("", *_SCORE_COLUMNS))
    body = "".join(
        f"<tr><th>{_cell(name)}</th>"
        + "".join(f"<td>{_cell((s or {}).get(c))}</td>" for c in _SCORE_COLUMNS)
        + "</tr>"
        for name, s in rows.items()
    )
    return f"<table><caption>{escape(caption)}</caption><tr>{head}</tr>{body}</table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1f2d3d}"
    "table{border-collapse:collapse;margin:1em 0}caption{text-align:left;font-weight:bold;margin:.3em 0}"
    "td,th{border-bottom:1px solid #d5d8dc;padding:3px 8px;font-size:13px;text-align:right}"
    "figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:13px;color:#5d6d7e}"
)


def _html(doc: dict[str, Any], result: BacktestResult, pictures: dict[str, str]) -> str:
    counts = doc["counts"]
    facts = ", ".join(f"{escape(k)}: <code>{escape(str(v))}</code>" for k, v in doc.items()
                      if isinstance(v, str | int | float))  # fmt: skip
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>finpulse backtest</title>"
        f"<style>{_STYLE}</style></head><body><h1>finpulse backtest</h1><p>{facts}</p>",
        f"<p>{counts['alert_events']} alert events ({counts['firing']} firing, "
        f"{counts['resolved']} resolved) over {counts['buckets']} buckets of {counts['keys']} keys; "
        f"{counts['labelled_events']} labelled events.</p>",
    ]
    if "metrics" in doc:
        m = doc["metrics"]
        parts.append("<h2>Precision, recall, delay</h2>")
        parts.append(_score_table(m["per_rule"], "per rule"))
        rows = {"overall": m["overall"], "labelled keys only": m["labelled_keys"], **m["per_key"]}
        parts.append(_score_table(rows, "per key"))
        parts.append(
            "<p>An alert is right when its episode window overlaps a labelled event of the same key. "
            "Delay: first firing decision − event start; lead time: event end − first firing decision "
            "(event time, seconds).</p>"
        )
    parts.append(
        f"<h2>What the detector saw</h2><figure><img data-figure='series' src='{pictures['series']}' "
        "alt='negative share, baseline, threshold, labelled events and alerts per rule and key'>"
        "<figcaption>One panel per rule and key. Orange: alert episodes (line: firing decision); blue along "
        "the bottom: labelled events; red: share above the firing threshold. A miss is blue without "
        "orange, a false alarm orange without blue.</figcaption></figure>"
    )
    if result.grid:
        parts.append("<h2>Parameter grid</h2>")
        if "grid" in pictures:
            parts.append(f"<figure><img data-figure='grid' src='{pictures['grid']}' "
                         "alt='F1 heat map of the parameter grid'></figure>")  # fmt: skip
        grid_rows = {
            " ".join(f"{k}={v}" for k, v in row["params"].items()) or "(rules file)": row.get("overall")
            or {"alerts": row.get("error") or row["alert_events"]}
            for row in doc["grid"]
        }
        parts.append(_score_table(grid_rows, "every combination (overall)"))
    parts.append("<h2>Alerts</h2><table><tr><th>state</th><th>severity</th><th>key</th><th>window</th>"
                 "<th>decided</th><th>volume</th><th>negative</th><th>z</th></tr>")  # fmt: skip
    for e in result.events:
        parts.append(
            f"<tr><td>{e.state}</td><td>{_cell(e.severity)}</td>"
            f"<td>{_cell(key_label(e.key_kind, e.key))}</td>"
            f"<td>{iso_utc(e.window_start)} – {iso_utc(e.window_end)}</td><td>{iso_utc(e.decided_at)}</td>"
            f"<td>{e.volume}</td><td>{e.negative}</td><td>{e.z_score:.1f}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts)
