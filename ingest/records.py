"""Turning loosely shaped source records (files, feeds, HTTP bodies) into Documents."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ingest.schema import Document, DocumentError, decode_document, make_doc_id, utc
from ingest.tickers import extract_tickers

_ID_FIELDS = ("id", "native_id", "guid")
_TIME_FIELDS = ("published_at", "published", "timestamp", "date", "created_at")
_TEXT_FIELDS = ("text", "body", "summary", "content")
_KNOWN = {"doc_id", "story_id", "source", "kind", "title", "url", "link", "lang", "tickers", "meta",
          "ingested_at", "schema_version", *_ID_FIELDS, *_TIME_FIELDS, *_TEXT_FIELDS}  # fmt: skip


def _first(record: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = record.get(name)
        if value not in (None, ""):
            return value
    return None


def to_document(record: Mapping[str, Any], default_source: str, default_kind: str = "news") -> Document:
    """Build a Document from a record with common field spellings; raise DocumentError if unusable."""
    if not isinstance(record, Mapping):
        raise DocumentError(f"expected an object, got {type(record).__name__}")
    source = str(record.get("source") or default_source)
    title = str(record.get("title") or "")
    text = str(_first(record, _TEXT_FIELDS) or "")
    published = _first(record, _TIME_FIELDS)
    try:
        published_at = utc(published) if published is not None else datetime.now(UTC)
    except (TypeError, ValueError) as exc:
        raise DocumentError(f"published_at: cannot parse {published!r}") from exc
    native_id = _first(record, _ID_FIELDS)
    raw_tickers = record.get("tickers") or ()
    if isinstance(raw_tickers, str):
        raw_tickers = tuple(t for t in raw_tickers.replace(";", ",").split(",") if t.strip())
    meta = dict(record.get("meta") or {})
    meta.update({k: v for k, v in record.items() if k not in _KNOWN})
    fields = {
        "doc_id": record.get("doc_id")
        or make_doc_id(source, native_id and str(native_id), f"{title}\n{text}"),
        "source": source,
        "kind": record.get("kind") or default_kind,
        "published_at": published_at,
        "title": title,
        "text": text,
        "url": str(record.get("url") or record.get("link") or ""),
        "lang": str(record.get("lang") or "en"),
        "tickers": extract_tickers(f"{title} {text}", tuple(str(t).strip() for t in raw_tickers)),
        "meta": meta,
    }
    if record.get("story_id"):
        fields["story_id"] = record["story_id"]
    return decode_document(fields)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records from a JSONL (.jsonl/.ndjson/.json lines) or CSV file, by extension."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DocumentError(f"{path}:{number}: not JSON: {exc}") from exc
