"""The Document contract: what every source produces and the stream consumes.

Dependency-free apart from pydantic so that every later stage can import it.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 20_000
# Kafka header that tags a document with a replay/backtest run; the stream app stores it as run_id.
RUN_ID_HEADER = "finpulse-run-id"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What ClickHouse's DateTime holds; times outside are refused here, never clamped (chDB would clamp).
DATETIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC)
# How far ahead of this machine's clock a document's times may be: more is a clock or unit error.
MAX_FUTURE_SKEW = timedelta(days=1)
# A ticker symbol: upper-case letters and digits, with `.` or `-` for share classes and exchanges.
TICKER_PATTERN = re.compile(r"^[A-Z0-9](?:[A-Z0-9.\-]{0,14})$")
MAX_TICKERS = 32
MAX_META_BYTES = 16_384

__all__ = [
    "DATETIME_MAX",
    "DATETIME_MIN",
    "MAX_FUTURE_SKEW",
    "MAX_TICKERS",
    "RUN_ID_HEADER",
    "RUN_ID_PATTERN",
    "SCHEMA_VERSION",
    "Document",
    "DocumentError",
    "decode_document",
    "iso_utc",
    "make_doc_id",
    "make_story_id",
    "normalise_text",
    "utc",
]


class DocumentError(ValueError):
    """Raised when bytes or a record cannot become a valid Document; the message is the DLQ reason."""


def utc(value: datetime | str | int | float) -> datetime:
    """Parse ISO-8601 strings or epoch seconds into a timezone-aware UTC datetime.

    Naive datetimes are taken to be UTC already. Anything else raises ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, datetime | str | int | float):
        raise ValueError(f"expected an ISO-8601 string or epoch seconds, got {type(value).__name__}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"epoch seconds {value!r} is not a finite number")
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"epoch seconds {value!r} out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-01:00
        raise ValueError(f"{value.isoformat()} is out of range") from exc


def iso_utc(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z` suffix (the inverse of `utc` for timezone-aware datetimes)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w$%.]+")


def normalise_text(text: str) -> str:
    """Lower-case, NFKC-normalised, punctuation-light text used for hashing."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:20]


def make_doc_id(source: str, native_id: str | None, text: str) -> str:
    """Stable id: hash of source + the source's own id, else of source + normalised text."""
    if native_id:
        return _digest(source, str(native_id))
    return _digest(source, "text", normalise_text(text))


def make_story_id(title: str, text: str) -> str:
    """Novelty key: reprints of the same story (same normalised headline) share it across sources."""
    basis = normalise_text(title) or normalise_text(text)[:280]
    return _digest("story", basis)


class Document(BaseModel):
    """One news item or social post, as carried on `finpulse.docs.raw`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    doc_id: str = Field(min_length=1, max_length=64)
    story_id: str = Field(default="", max_length=64)
    source: str = Field(min_length=1, max_length=128)
    kind: Literal["news", "social"] = "news"
    published_at: datetime
    ingested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    title: str = Field(default="", max_length=2_000)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    url: str = Field(default="", max_length=2_048)
    lang: str = Field(default="en", max_length=16)
    tickers: tuple[str, ...] = ()
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("published_at", "ingested_at", mode="before")
    @classmethod
    def _to_utc(cls, value: Any) -> datetime:
        return utc(value)

    @field_validator("published_at", "ingested_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        latest = min(datetime.now(UTC) + MAX_FUTURE_SKEW, DATETIME_MAX)
        if not DATETIME_MIN <= value <= latest:
            raise ValueError(
                f"{iso_utc(value)} is outside [{iso_utc(DATETIME_MIN)}, now + {MAX_FUTURE_SKEW.days} day]"
            )
        return value

    @field_validator("tickers")
    @classmethod
    def _symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_TICKERS:
            raise ValueError(f"{len(value)} tickers, at most {MAX_TICKERS}")
        for ticker in value:
            if not TICKER_PATTERN.match(ticker):
                raise ValueError(f"ticker {ticker[:40]!r} is not 1-15 of A-Z, 0-9, '.', '-'")
        return value

    @field_validator("meta")
    @classmethod
    def _serialisable_meta(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson writes
            raise ValueError(f"not serialisable as JSON: {exc}") from exc
        size = len(encoded)
        if size > MAX_META_BYTES:
            raise ValueError(f"{size} bytes of JSON, at most {MAX_META_BYTES}")
        if orjson.loads(encoded) != value:  # NaN/infinity (written as null) or non-string keys
            raise ValueError("holds values JSON cannot carry (NaN, infinity, non-string keys)")
        return value

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value} (this build reads {SCHEMA_VERSION})")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> Document:
        if not (self.title.strip() or self.text.strip()):
            raise ValueError("document has neither title nor text")
        if not self.story_id:
            object.__setattr__(self, "story_id", make_story_id(self.title, self.text))
        return self

    @property
    def content(self) -> str:
        """The text the classifier reads: title and body joined."""
        if self.title and self.text and not self.text.startswith(self.title):
            return f"{self.title}. {self.text}"
        return self.text or self.title

    def to_json(self) -> bytes:
        """Serialise to the Kafka wire format (UTF-8 JSON)."""
        return orjson.dumps(self.model_dump(mode="json"))


def decode_document(raw: bytes | str | dict[str, Any]) -> Document:
    """Decode one Kafka value (or a parsed record) into a Document, or raise DocumentError."""
    try:
        record = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
    except orjson.JSONDecodeError as exc:
        raise DocumentError(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise DocumentError(f"expected a JSON object, got {type(record).__name__}")
    try:
        return Document.model_validate(record)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}" for err in exc.errors()
        )
        raise DocumentError(f"invalid document: {problems}") from exc
