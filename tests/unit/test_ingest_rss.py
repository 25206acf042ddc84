"""RSS polling: new items only, remembered across restarts."""

from __future__ import annotations

from pathlib import Path

from ingest.rss import FeedPoller

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title>
{items}
</channel></rss>"""
ITEM = """<item><guid>{id}</guid><title>{title}</title><link>https://wire.example/{id}</link>
<description>Body {id}</description><pubDate>Mon, 02 Nov 2026 13:0{id}:00 GMT</pubDate></item>"""


def _write(path: Path, ids: list[int]) -> None:
    path.write_text(FEED.format(items="".join(ITEM.format(id=i, title=f"$ACME story {i}") for i in ids)))


def test_only_new_items_across_restarts(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    _write(feed, [1, 2])
    poller = FeedPoller(str(feed), tmp_path / "state")
    first = poller.poll()
    assert [d.title for d in first] == ["$ACME story 1", "$ACME story 2"]
    assert first[0].tickers == ("ACME",) and first[0].published_at.minute == 1
    poller.commit()
    assert poller.poll() == []
    _write(feed, [1, 2, 3])
    restarted = FeedPoller(str(feed), tmp_path / "state")
    assert [d.title for d in restarted.poll()] == ["$ACME story 3"]
