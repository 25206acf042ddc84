"""RSS/Atom polling: new items only, remembered across restarts in a small state file."""

from __future__ import annotations

import calendar
import hashlib
from collections import deque
from pathlib import Path
from urllib.parse import urlparse

import orjson

from ingest.records import to_document
from ingest.schema import Document, DocumentError

MAX_REMEMBERED = 5_000


class FeedPoller:
    """Polls one feed (URL or local file); `poll()` returns the items not seen before."""

    def __init__(self, location: str, state_dir: Path, source: str | None = None) -> None:
        self.location = location
        self.source = source or _source_name(location)
        digest = hashlib.sha1(location.encode()).hexdigest()[:12]
        self._state_path = state_dir / f"rss-{digest}.json"
        self._seen: deque[str] = deque(maxlen=MAX_REMEMBERED)
        if self._state_path.exists():
            self._seen.extend(orjson.loads(self._state_path.read_bytes()))
        self._seen_set = set(self._seen)
        self.rejected: list[str] = []

    def poll(self) -> list[Document]:
        """Fetch the feed and return new items as Documents (call `commit()` once they are sent)."""
        import feedparser

        parsed = feedparser.parse(self.location)
        if parsed.get("bozo") and not parsed.entries:
            raise DocumentError(f"cannot read feed {self.location}: {parsed.get('bozo_exception')}")
        fresh = []
        for entry in parsed.entries:
            native_id = entry.get("id") or entry.get("link") or entry.get("title")
            if not native_id or native_id in self._seen_set:
                continue
            record = {
                "id": native_id,
                "title": entry.get("title", ""),
                "text": entry.get("summary", ""),
                "url": entry.get("link", ""),
                "published_at": _entry_time(entry),
                "source": self.source,
            }
            try:
                fresh.append(to_document(record, default_source=self.source))
            except DocumentError as exc:
                self.rejected.append(f"{native_id}: {exc}")
            self._remember(native_id)
        return fresh

    def _remember(self, native_id: str) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(native_id)
        self._seen_set.add(native_id)

    def commit(self) -> None:
        """Persist the seen ids (after the items were published)."""
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(list(self._seen)))
        tmp.replace(self._state_path)


def _entry_time(entry) -> int | None:
    for name in ("published_parsed", "updated_parsed"):
        parsed = entry.get(name)
        if parsed:
            return calendar.timegm(parsed)
    return None


def _source_name(location: str) -> str:
    parsed = urlparse(location)
    return f"rss:{parsed.netloc or Path(parsed.path).stem}"
