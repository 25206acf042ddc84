"""The v3 template corpus (models/corpus/v3): deterministic, template-disjoint splits, taxonomy labels."""

from __future__ import annotations

from collections import Counter

import pytest

from models.corpus import DATA_DIR, SPLITS, load_split
from models.corpus.author import all_templates, assign_splits, generate_corpus
from models.corpus.templates import KINDS, SENTIMENTS, TOPICS

FIELDS = {"id", "text", "sentiment", "topic", "kind", "template_id", "split"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, list[dict]]:
    return {name: load_split(name, DATA_DIR.with_name("v3")) for name in SPLITS}


def test_generator_is_deterministic() -> None:
    assert generate_corpus(seed=7, total=500) == generate_corpus(seed=7, total=500)
    assert generate_corpus(seed=7, total=500) != generate_corpus(seed=8, total=500)


def test_shipped_files_match_the_generator(shipped: dict[str, list[dict]]) -> None:
    regenerated = generate_corpus()
    for name in SPLITS:
        assert shipped[name] == [r for r in regenerated if r["split"] == name]


def test_splits_share_no_template_and_no_text(shipped: dict[str, list[dict]]) -> None:
    templates = {name: {r["template_id"] for r in rows} for name, rows in shipped.items()}
    texts = {name: {r["text"].lower() for r in rows} for name, rows in shipped.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not templates[a] & templates[b]
        assert not texts[a] & texts[b]
    for name, rows in shipped.items():
        assert all(r["split"] == name for r in rows)


def test_records_are_well_formed_and_labels_in_taxonomy(shipped: dict[str, list[dict]]) -> None:
    rows = [r for split in shipped.values() for r in split]
    assert len(rows) >= 5000
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == FIELDS
        assert r["sentiment"] in SENTIMENTS
        assert r["topic"] in TOPICS
        assert r["kind"] in KINDS
        assert r["text"].strip() and "{" not in r["text"]
        assert r["template_id"].startswith(f"{r['topic']}.{r['sentiment']}.{r['kind']}.")


def test_classes_are_reasonably_balanced(shipped: dict[str, list[dict]]) -> None:
    rows = [r for split in shipped.values() for r in split]
    sentiment = Counter(r["sentiment"] for r in rows)
    topic = Counter(r["topic"] for r in rows)
    for label in SENTIMENTS:
        assert 0.27 <= sentiment[label] / len(rows) <= 0.40
    for label in TOPICS:
        assert topic[label] / len(rows) >= 0.06


def test_every_cell_has_templates_in_every_split() -> None:
    templates = all_templates()
    assert len(templates) >= 400
    split = assign_splits(templates)
    cells = Counter((t.cell, split[t.template_id]) for t in templates)
    for topic in TOPICS:
        for sentiment in SENTIMENTS:
            for kind in KINDS:
                for name in SPLITS:
                    assert cells[((topic, sentiment, kind), name)] >= 1


def test_no_template_is_written_twice() -> None:
    # A repeated pattern (e.g. copied into a later authoring pass) could land in two splits.
    patterns = Counter(t.pattern for t in all_templates())
    assert [p for p, n in patterns.items() if n > 1] == []


def test_load_split_rejects_unknown_names() -> None:
    with pytest.raises(ValueError):
        load_split("dev")
