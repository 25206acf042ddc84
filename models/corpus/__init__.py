"""The finpulse authored corpus: synthetic, labelled financial headlines and social posts.

See GUIDELINES.md (labels) and DATASHEET.md (how it was made). The shipped files live in
`data/`; `python -m models.corpus.author` regenerates them deterministically.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
SPLITS = ("train", "validation", "test")

__all__ = ["DATA_DIR", "SPLITS", "load_split"]


def load_split(name: str) -> list[dict]:
    """Records of one shipped split (`train`, `validation` or `test`).

    Each record has id, text, sentiment, topic, kind, template_id and split.
    """
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    with (DATA_DIR / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
