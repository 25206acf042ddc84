"""The finpulse authored corpus: financial headlines, wire tweets, press-release sentences, analyst
notes, macro lines and social posts, written and labelled by the project.

See GUIDELINES.md (labels) and DATASHEET.md (how it was made). The shipped splits live in
`data/`; `finpulse model corpus` rebuilds them from the labelled items in `v4/`.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
SPLITS = ("train", "validation", "test")
TOPICS = (
    "earnings",
    "mergers_acquisitions",
    "macro_central_banks",
    "regulation_legal",
    "analyst_ratings",
    "markets",
    "company_news",
    "other",
)
KINDS = ("news", "social")

__all__ = ["DATA_DIR", "KINDS", "SPLITS", "TOPICS", "load_split"]


def load_split(name: str, data_dir: Path = DATA_DIR) -> list[dict]:
    """Records of one shipped split (`train`, `validation` or `test`).

    Each record has id, text, sentiment, topic, kind, genre, story, labels and split.
    """
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    with (data_dir / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
