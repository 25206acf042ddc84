"""Turning loosely shaped source records (files, feeds, HTTP bodies) into Documents."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ingest.schema import MAX_TICKERS, Document, DocumentError, decode_document, make_doc_id, utc
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


def _scalar(name: str, value: Any) -> str:
    """A text field: strings as they are, numbers spelled out (CSV and loose JSON), nothing else."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DocumentError(f"{name}: expected a string, got {type(value).__name__}")
    return str(value)


def _tickers(value: Any) -> tuple[str, ...]:
    if value is None:  # null means absent, as for every other field
        return ()
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise DocumentError(
            f"tickers: expected a list of strings or a comma-separated string, got {value!r:.80}"
        )
    return tuple(t.strip().upper() for t in value if t.strip())


def is_undated(record: Mapping[str, Any]) -> bool:
    """True when the record carries no publication time (so `to_document` stamps it)."""
    return _first(record, _TIME_FIELDS) is None


def to_document(
    record: Mapping[str, Any],
    default_source: str,
    default_kind: str = "news",
    received_at: datetime | None = None,
) -> Document:
    """Build a Document from a record with common field spellings; raise DocumentError if unusable.

    An undated record is stamped with `received_at` (default: now).
    """
    if not isinstance(record, Mapping):
        raise DocumentError(f"expected an object, got {type(record).__name__}")
    source = _scalar("source", record.get("source")) or default_source
    title = _scalar("title", record.get("title"))
    text = _scalar("text", _first(record, _TEXT_FIELDS))
    published = _first(record, _TIME_FIELDS)
    try:
        published_at = utc(published) if published is not None else received_at or datetime.now(UTC)
    except ValueError as exc:
        raise DocumentError(f"published_at: cannot parse {published!r:.80} ({exc})") from exc
    native_id = _first(record, _ID_FIELDS)
    if native_id is not None:
        native_id = _scalar("id", native_id)
    meta = record.get("meta")
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise DocumentError(f"meta: expected an object, got {type(meta).__name__}")
    meta = {**meta, **{k: v for k, v in record.items() if k not in _KNOWN}}
    explicit = _tickers(record.get("tickers"))
    found = extract_tickers(f"{title} {text}", explicit)
    # Symbols given by the source are kept (and checked); names found in the text fill up to the limit.
    tickers = found[: max(len(explicit), MAX_TICKERS)]
    fields = {
        "doc_id": _scalar("doc_id", record.get("doc_id"))
        or make_doc_id(source, native_id, f"{title}\n{text}"),
        "source": source,
        "kind": _scalar("kind", record.get("kind")) or default_kind,
        "published_at": published_at,
        "title": title,
        "text": text,
        "url": _scalar("url", _first(record, ("url", "link"))),
        "lang": _scalar("lang", record.get("lang")) or "en",
        "tickers": tickers,
        "meta": meta,
    }
    if record.get("story_id"):
        fields["story_id"] = _scalar("story_id", record["story_id"])
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
