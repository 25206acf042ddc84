"""The Document contract: what every source produces and the stream consumes.

Dependency-free apart from pydantic so that every later stage can import it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 20_000
# Kafka header that tags a document with a replay/backtest run; the stream app stores it as run_id.
RUN_ID_HEADER = "finpulse-run-id"

__all__ = [
    "RUN_ID_HEADER",
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

    Naive datetimes are taken to be UTC already.
    """
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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
