"""Document contract, record normalisation and ticker extraction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.records import read_records, to_document
from ingest.schema import MAX_TICKERS, Document, DocumentError, decode_document, make_doc_id, make_story_id
from ingest.tickers import extract_tickers


def test_doc_id_is_stable_per_source_and_native_id() -> None:
    assert make_doc_id("wire", "42", "a") == make_doc_id("wire", "42", "b")
    assert make_doc_id("wire", "42", "a") != make_doc_id("other", "42", "a")
    assert make_doc_id("wire", None, "Fed  holds RATES!") == make_doc_id("wire", None, "fed holds rates")


def test_story_id_chains_reprints_across_sources() -> None:
    assert make_story_id("Apple cuts guidance", "") == make_story_id("APPLE cuts guidance!", "other body")
    assert make_story_id("Apple cuts guidance", "") != make_story_id("Apple raises guidance", "")


def test_times_are_timezone_aware_utc() -> None:
    doc = to_document({"id": "1", "title": "x", "published_at": "2026-11-02T15:00:00+02:00"}, "s")
    assert doc.published_at == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    assert doc.published_at.tzinfo == UTC
    naive = to_document({"id": "2", "title": "x", "published_at": "2026-11-02 13:00:00"}, "s")
    assert naive.published_at.utcoffset() == timedelta(0)
    epoch = to_document({"id": "3", "title": "x", "timestamp": 1_762_088_400}, "s")
    assert epoch.published_at == datetime(2025, 11, 2, 13, 0, tzinfo=UTC)


def test_record_fields_are_normalised() -> None:
    doc = to_document(
        {"id": "n1", "title": "$TSLA slides as Apple gains", "body": "text", "link": "https://x", "extra": 1},
        "wire",
        "social",
    )
    assert doc.kind == "social" and doc.text == "text" and doc.url == "https://x"
    assert doc.tickers == ("TSLA", "AAPL")
    assert doc.meta == {"extra": 1}
    assert decode_document(doc.to_json()) == doc


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{oops", "not JSON"),
        (b"[1]", "expected a JSON object"),
        (b'{"doc_id": "a", "source": "s", "published_at": "2026-01-01T00:00:00Z"}', "neither title nor text"),
        (b'{"doc_id": "a", "source": "s", "title": "t"}', "published_at"),
        (
            b'{"doc_id": "a", "source": "s", "title": "t", "published_at": "2026-01-01T00:00:00Z", "x": 1}',
            "x",
        ),
        (
            b'{"schema_version": 9, "doc_id": "a", "source": "s", "title": "t", "published_at": "2026-01"}',
            "unsupported schema_version",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        decode_document(raw)


def test_unparseable_time_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="published_at"):
        to_document({"id": "1", "title": "x", "published_at": "yesterday"}, "s")


def test_tickers_from_cashtags_and_company_names() -> None:
    assert extract_tickers("$aapl and $BRK.B up; Microsoft Corp. down") == ("AAPL", "BRK.B", "MSFT")
    assert extract_tickers("Price target raised; costs $5 more") == ()
    assert extract_tickers("Nvidia's record quarter", known=("NVDA",)) == ("NVDA",)


def test_jsonl_and_csv_files(tmp_path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"id": "1", "title": "a"}\n\n{"id": "2", "title": "b"}\n')
    assert [r["id"] for r in read_records(jsonl)] == ["1", "2"]
    csv_file = tmp_path / "docs.csv"
    csv_file.write_text("id,title,published_at\n7,Fed holds rates,2026-11-02T13:00:00Z\n")
    (record,) = read_records(csv_file)
    assert to_document(record, "csv").title == "Fed holds rates"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 1}\n{nope\n')
    with pytest.raises(DocumentError, match="broken.jsonl:2"):
        list(read_records(broken))


def test_document_is_immutable() -> None:
    doc = Document(doc_id="a", source="s", published_at="2026-01-01T00:00:00Z", title="t")
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own frozen error
        doc.title = "changed"


@pytest.mark.parametrize("when", ["2200-01-01T00:00:00Z", "1900-01-01T00:00:00Z", 1e12, -1])
def test_times_clickhouse_cannot_hold_or_far_in_the_future_are_rejected(when) -> None:
    record = {"id": "1", "title": "x", "published_at": when}
    with pytest.raises(DocumentError, match="published_at"):
        to_document(record, "s")
    raw = {"doc_id": "a", "source": "s", "title": "x", "published_at": when}
    with pytest.raises(DocumentError, match="published_at"):
        decode_document(orjson.dumps(raw))


@pytest.mark.parametrize("ticker", ["A\x1fB", "AAPL US", "$AAPL", "X" * 16, "", "aapl\n"])
def test_tickers_outside_the_symbol_pattern_are_rejected(ticker: str) -> None:
    raw = {"doc_id": "a", "source": "s", "title": "x", "published_at": "2026-11-02T13:00:00Z"}
    with pytest.raises(DocumentError, match="tickers"):
        decode_document(orjson.dumps({**raw, "tickers": [ticker]}))
    with pytest.raises(DocumentError, match="tickers"):
        decode_document(orjson.dumps({**raw, "tickers": [f"T{i}" for i in range(MAX_TICKERS + 1)]}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("published_at", {}),
        ("published_at", [1]),
        ("published_at", 1e20),
        ("published_at", True),
        ("tickers", 5),
        ("tickers", [1, 2]),
        ("tickers", 0),
        ("tickers", False),
        ("tickers", {}),
        ("url", False),
        ("meta", False),
        ("meta", []),
        ("meta", "x"),
        ("meta", [1]),
        ("title", {"a": 1}),
        ("id", [1]),
    ],
)
def test_every_malformed_field_is_a_document_error_naming_it(field: str, value) -> None:
    with pytest.raises(DocumentError, match=field if field != "id" else "id"):
        to_document({"id": "1", "title": "x", "published_at": "2026-11-02T13:00:00Z", field: value}, "s")


def test_null_tickers_mean_none_given() -> None:
    record = {"id": "1", "title": "Quiet day", "published_at": "2026-11-02T13:00:00Z", "tickers": None}
    assert to_document(record, "s").tickers == ()


def test_meta_nested_deeper_than_json_writes_is_rejected() -> None:
    deep: dict = {}
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(DocumentError, match="meta"):
        to_document({"id": "1", "title": "x", "meta": deep}, "s")
