"""The shipped demo feed, planted events and CSV sample: valid, test-split only, reproducible."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.schema import Document, make_doc_id, utc

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"


@pytest.fixture(scope="module")
def feed() -> list[dict]:
    with (SAMPLES / "demo_feed.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def events() -> list[dict]:
    with (SAMPLES / "demo_events.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _documents(rows: list[dict]) -> list[Document]:
    docs = []
    for row in rows:
        fields = {k: v for k, v in row.items() if k != "id"}
        docs.append(
            Document(doc_id=make_doc_id(row["source"], row["id"], row["text"] or row["title"]), **fields)
        )
    return docs


def test_demo_feed_validates_as_documents(feed: list[dict]) -> None:
    docs = _documents(feed)
    assert 500 <= len(docs) <= 700
    assert len({d.doc_id for d in docs}) == len(docs)
    assert all(d.published_at.tzinfo is not None for d in docs)
    assert all(row["published_at"].endswith("Z") for row in feed)
    assert [d.published_at for d in docs] == sorted(d.published_at for d in docs)
    assert docs[-1].published_at - docs[0].published_at <= timedelta(hours=6, minutes=15)


def test_syndicated_reprints_share_a_story_id(feed: list[dict]) -> None:
    docs = _documents(feed)
    reprinted = [d for d in docs if d.meta.get("reprint")]
    assert reprinted
    stories = {d.story_id for d in docs if not d.meta.get("reprint")}
    for d in reprinted:
        assert d.story_id in stories


def test_events_csv_lists_the_planted_bursts(feed: list[dict], events: list[dict]) -> None:
    assert {e["key"] for e in events} == {"topic:regulation_legal", "ticker:TSLA"}
    for e in events:
        start, end = utc(e["start"]), utc(e["end"])
        assert start < end
        planted = [r for r in feed if r["meta"].get("planted") == e["key"]]
        assert len(planted) >= 20
        assert all(start <= utc(r["published_at"]) < end + timedelta(minutes=10) for r in planted)
        assert all(r["meta"]["label_sentiment"] == "negative" for r in planted)
        kind, value = e["key"].split(":")
        if kind == "ticker":
            assert all(value in r["tickers"] for r in planted if not r["meta"].get("reprint"))
        else:
            assert all(r["meta"]["label_topic"] == value for r in planted)


def test_headlines_csv_has_the_csv_source_columns() -> None:
    with (SAMPLES / "headlines.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == ["id", "published_at", "source", "title", "text", "url"]
    assert 20 <= len(rows) <= 50
    for row in rows:
        Document(
            doc_id=make_doc_id(row["source"], row["id"], row["text"]),
            **{k: v for k, v in row.items() if k != "id"},
        )
