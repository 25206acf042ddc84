"""Labelled text for training and evaluation: the shipped corpus and users' local files.

Every loader returns records ``{"text": str, "sentiment": "negative|neutral|positive", "topic": str | None}``
(extra keys are kept). ``topic`` None means the row trains the sentiment head only.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from models.base import SENTIMENTS

Record = dict[str, Any]
logger = logging.getLogger(__name__)
# Optional column of user files: rows with the same value are one story and share a split.
STORY_COLUMN = "story"

SENTIMENT_ALIASES = {
    "negative": "negative",
    "neg": "negative",
    "bearish": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
    "bullish": "positive",
    "-1": "negative",
    "1": "positive",
}


# Pictographs, dingbats, arrows and the joiners that build emoji sequences.
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2190-\u21ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d]")
_WORD = re.compile(r"[^\W\d_]+")


class DatasetError(ValueError):
    """A data file cannot be read as labelled text."""


def parse_label_map(spec: str | None) -> dict[str, str]:
    """Parse ``"0=negative,1=neutral,2=positive"`` into a dict (empty when spec is None)."""
    if not spec:
        return {}
    pairs = (item.split("=", 1) for item in spec.split(",") if item.strip())
    return {k.strip(): v.strip() for k, v in pairs}


def normalise_sentiment(value: Any, label_map: Mapping[str, str] | None = None) -> str:
    """Map a raw label to negative/neutral/positive (label_map first, then common aliases)."""
    raw = str(value).strip()
    mapped = (label_map or {}).get(raw, raw)
    label = SENTIMENT_ALIASES.get(mapped.lower()) or (
        mapped.lower() if mapped.lower() in SENTIMENTS else None
    )
    if label is None:
        raise DatasetError(
            f"unknown sentiment label {value!r}; pass a label map such as 0=negative,1=neutral"
        )
    return label


def load_corpus(split: str) -> list[Record]:
    """A split (train | validation | test) of the shipped finpulse corpus."""
    from models.corpus import load_split

    return load_split(split)


def read_phrasebank(path: Path) -> list[Record]:
    """Financial PhraseBank ``sentence@label`` lines (the original files are Latin-1)."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = _RowReport(path)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep or not sentence.strip():
            rows.skip(n, "expected 'sentence@label'")
            continue
        rows.keep(n, {"text": sentence.strip(), "sentiment": label, "topic": None})
    return rows.records()


def read_table(
    path: Path,
    text_column: str = "text",
    label_column: str = "label",
    topic_column: str | None = "topic",
    label_map: Mapping[str, str] | None = None,
) -> list[Record]:
    """CSV/TSV (header row) or JSONL rows with a text column, a sentiment column and an optional topic."""
    path = Path(path)
    rows = _RowReport(path, label_map)
    for n, row in _table_rows(path):
        if not isinstance(row, dict):
            rows.skip(n, "not a JSON object" if row is not None else "not valid JSON")
        elif row.get(text_column) is None or row.get(label_column) in (None, ""):
            rows.skip(n, f"needs columns {text_column!r} and {label_column!r}")
        elif not isinstance(row[text_column], str) or not row[text_column].strip():
            rows.skip(n, f"{text_column!r} is not a non-empty string")
        else:
            topic = row.get(topic_column) if topic_column else None
            record = {
                "text": row[text_column],
                "sentiment": row[label_column],
                "topic": str(topic).strip() if topic not in (None, "") else None,
            }
            if row.get(STORY_COLUMN) not in (None, ""):
                record[STORY_COLUMN] = str(row[STORY_COLUMN])
            rows.keep(n, record)
    return rows.records()


def _table_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row) of a JSONL or CSV/TSV file; None for a line that is not JSON."""
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        yield from _jsonl_rows(path)
        return
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh, dialect="excel-tab" if path.suffix.lower() == ".tsv" else "excel")
        for row in reader:
            yield reader.line_num, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank JSONL line; None for a line that is not JSON."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except ValueError:
                    yield n, None


class _RowReport:
    """Collects a file's good rows and counts the skipped ones by reason (first line of each).

    Malformed rows are skipped with a warning so one bad line does not stop a desk's training run;
    an unknown sentiment label stops it, as it usually means the file's label scheme needs a map.
    """

    def __init__(self, path: Path, label_map: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.label_map = label_map
        self.kept: list[Record] = []
        self.skipped: Counter[str] = Counter()
        self.first_line: dict[str, int] = {}

    def keep(self, line: int, record: Record) -> None:
        try:
            record["sentiment"] = normalise_sentiment(record["sentiment"], self.label_map)
        except DatasetError as exc:
            raise DatasetError(f"{self.path}:{line}: {exc}") from None
        self.kept.append(record)

    def skip(self, line: int, reason: str) -> None:
        self.skipped[reason] += 1
        self.first_line.setdefault(reason, line)

    def records(self) -> list[Record]:
        """The kept records; raises DatasetError when there are none."""
        summary = "; ".join(
            f"{count} {reason} (first at line {self.first_line[reason]})"
            for reason, count in self.skipped.most_common()
        )
        if not self.kept:
            raise DatasetError(f"{self.path}: no labelled rows" + (f" ({summary})" if summary else ""))
        if summary:
            logger.warning("%s: skipped %d rows: %s", self.path, self.skipped.total(), summary)
        return self.kept


def read_file(path: Path, **table_options: Any) -> list[Record]:
    """Read a local labelled file, by extension: .txt = PhraseBank, .csv/.tsv/.jsonl = table."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        return read_phrasebank(path)
    return read_table(path, **table_options)


def split_records(
    records: list[Record], validation: float = 0.1, test: float = 0.1, seed: int = 13
) -> dict[str, list[Record]]:
    """Shuffle and split user records into train/validation/test, stratified by sentiment.

    Rows that share a ``story`` value (the same event written several times) stay in one split;
    rows without one are their own story.
    """
    rng = random.Random(seed)
    stories: dict[str, list[Record]] = {}
    for n, r in enumerate(records):
        stories.setdefault(str(r.get(STORY_COLUMN) or f"row-{n}"), []).append(r)
    out: dict[str, list[Record]] = {"train": [], "validation": [], "test": []}
    for label in SENTIMENTS:
        groups = [g for g in stories.values() if g[0]["sentiment"] == label]
        rng.shuffle(groups)
        n_val, n_test = round(len(groups) * validation), round(len(groups) * test)
        out["validation"] += [r for g in groups[:n_val] for r in g]
        out["test"] += [r for g in groups[n_val : n_val + n_test] for r in g]
        out["train"] += [r for g in groups[n_val + n_test :] for r in g]
    for part in out.values():
        rng.shuffle(part)
    return out


def read_texts(path: Path) -> list[str]:
    """The non-empty ``text`` fields of a JSONL file (bad lines skipped)."""
    rows = (row for _, row in _jsonl_rows(Path(path)) if isinstance(row, dict))
    return [text for row in rows if isinstance(text := row.get("text"), str) and text.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write rows as JSON lines."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def shortcut_cues(records: Sequence[Record], min_count: int = 10, purity: float = 0.9) -> list[str]:
    """Class-specific words: in at least ``min_count`` records, ``purity`` or more of them one label."""
    by_word: defaultdict[str, Counter] = defaultdict(Counter)
    for record in records:
        for word in set(_WORD.findall(record["text"].casefold())):
            by_word[word][record["sentiment"]] += 1
    return sorted(
        word
        for word, labels in by_word.items()
        if (total := sum(labels.values())) >= min_count and max(labels.values()) >= purity * total
    )


def without_cues(records: Sequence[Record], cues: Sequence[str]) -> list[Record]:
    """Records with emoji and the given cue words removed from their text (the shortcut ablation)."""
    if cues:
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, cues)) + r")\b", re.IGNORECASE)
    out = []
    for record in records:
        text = _EMOJI.sub(" ", record["text"])
        if cues:
            text = pattern.sub(" ", text)
        out.append({**record, "text": " ".join(text.split())})
    return out
