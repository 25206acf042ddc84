"""The pictures a desk reads: the backtest report opened in headless Chromium, the demo report's PNG.

Chromium is a real component here: when it is missing or does not start, the test fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alerts.backtest import (
    MetaLabels,
    backtest,
    classify_documents,
    input_series,
    load_events,
    parse_grid,
    read_input,
)
from alerts.backtest_report import write_report
from alerts.buckets import bucket_series
from alerts.rules import load_rules
from alerts.settings import AlertSettings
from alerts.worker import AlertWorker
from dashboards import panel_sql as q
from dashboards.report import render_report, report_context, report_figure, run_panel_query
from storage.client import ClickHouseClient, connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings
from tests.integration.browser import BrowserError, open_page

pytestmark = pytest.mark.integration

FEED = Path("ingest/samples/demo_feed.jsonl")
EVENTS = Path("ingest/samples/demo_events.csv")


@pytest.fixture(scope="module")
def backtest_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the shipped sample under its own labels, with a grid."""
    out = tmp_path_factory.mktemp("backtest")
    docs, _ = read_input(FEED)
    rules = load_rules()
    series = input_series(docs, MetaLabels(docs), rules, out / "work")
    result = backtest(series, rules, load_events(EVENTS), parse_grid(["z=2.5,3.5,5", "min_lift=0.1,0.3"]))
    write_report(out / "report", result, series, {"source": "input", "input": str(FEED)})
    return out / "report" / "report.html"


def _open(path: Path, screenshot: Path):
    try:
        return open_page(path, screenshot)
    except BrowserError as exc:
        pytest.fail(f"headless Chromium: {exc}")


def test_backtest_report_renders_in_chromium(backtest_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "backtest.png"
    page = _open(backtest_report, shot)
    assert page.errors == [], page.errors
    assert page.broken_images == [], f"broken images: {page.broken_images}"
    assert {image["figure"] for image in page.images} == {"series", "grid"}, page.images
    assert all(image["width"] > 300 and image["height"] > 200 for image in page.images)
    assert page.title == "finpulse backtest"
    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= 1500, image.size
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50, "the screenshot is blank"


def test_browser_check_fails_on_a_broken_image(backtest_report: Path, tmp_path: Path) -> None:
    html = backtest_report.read_text()
    broken = tmp_path / "report.html"
    # the series picture's PNG bytes replaced by text that decodes to no image
    broken.write_text(
        re.sub(r"(data-figure='series' src='data:image/png;base64,)[^']+", r"\1bm90IGEgcG5n", html)
    )
    page = _open(broken, tmp_path / "broken.png")
    assert page.broken_images == ["series"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseClient]:
    """The demo feed stored as run `live` with its own labels, alerts decided by the worker."""
    settings = ClickHouseSettings(mode="embedded", embedded_path=tmp_path_factory.mktemp("demo") / "chdb")
    client = connect(settings)
    migrate(client)
    from storage.writer import BatchWriter

    docs, _ = read_input(FEED)
    classify_documents(BatchWriter(client, settings), docs, MetaLabels(docs), run_id="live")
    worker = AlertWorker(AlertSettings(webhooks=[]), client)
    worker.setup()
    newest = client.query(f"SELECT max(published_at) FROM {client.database}.classifications")[0][0]
    worker.run_once(watermark=newest + timedelta(hours=1))
    worker.close()
    yield client
    client.close()


def test_demo_report_shows_both_bursts_on_non_blank_panels(
    demo_run: ClickHouseClient, tmp_path: Path
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = report_figure(demo_run, "live", load_rules())
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[:, :, :3].astype(int)
    height = pixels.shape[0]
    panels = {ax.get_title(loc="left"): ax for ax in fig.axes if ":" in ax.get_title(loc="left")}
    assert {"topic: regulation_legal", "ticker: TSLA"} <= set(panels), sorted(panels)
    alerted = {title for title, ax in panels.items() if ax.get_title(loc="right")}
    assert {"topic: regulation_legal", "ticker: TSLA"} <= alerted
    for title, ax in panels.items():
        box = ax.get_window_extent()
        region = pixels[int(height - box.y1) : int(height - box.y0), int(box.x0) : int(box.x1)]
        ink = (np.abs(region - region.reshape(-1, 3).max(axis=0)).max(axis=2) > 60).mean()
        # measured: a panel without data 0.24 % (spines, "no stories"), the thinnest topic here 0.97 %
        assert ink > 0.005, f"panel {title!r} is blank ({ink:.2%} ink)"

    png = render_report(demo_run, "live", tmp_path / "report.png")
    with Image.open(png) as image:
        assert image.width >= 1400 and image.height >= 1200, image.size
    assert png.stat().st_size > 100_000


def test_demo_panels_count_what_the_dashboard_counts(demo_run: ClickHouseClient) -> None:
    """The panels (the detector's rollup) and the dashboard's per-minute topic panels agree exactly."""
    context = report_context(demo_run, "live")
    minute = type(context)(context.time_from, context.time_to, 60, context.variables)
    volume = {(t, topic): n for t, topic, n in run_panel_query(demo_run, q.VOLUME_BY_TOPIC, minute)}
    rows = run_panel_query(demo_run, q.NEGATIVE_SHARE_BY_TOPIC, minute)
    share = {(t.replace(tzinfo=None), topic): s for t, topic, s in rows}
    start = context.time_from.replace(second=0)
    rollup = bucket_series(demo_run, "live", start, context.time_to, 60, ("topic",))
    assert {(b.start.replace(tzinfo=None), b.key): b.volume for b in rollup} == {
        (t.replace(tzinfo=None), k): n for (t, k), n in volume.items()
    }
    for b in rollup:
        assert b.negative == round(share[(b.start.replace(tzinfo=None), b.key)] * b.volume)
