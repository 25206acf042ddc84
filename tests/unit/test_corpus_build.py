"""Corpus v4 build: label resolution, kappa, story split, frozen test, and the shipped files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from models.corpus import DATA_DIR, SPLITS, load_split
from models.corpus.build import (
    V4_DIR,
    assign_splits,
    build_corpus,
    cohen_kappa,
    freeze_test,
    import_items,
    merge_duplicate_stories,
)


def _item(n: int, sentiment: str = "neutral", genre: str = "wire_tweet", story: str | None = None) -> dict:
    return {
        "id": f"t-{n:04d}",
        "text": f"Item number {n} about company {n % 17}",
        "sentiment": sentiment,
        "topic": "earnings",
        "kind": "news",
        "genre": genre,
        "story": story or f"t-s{n:04d}",
    }


def _write(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_kappa_matches_the_textbook_example() -> None:
    # 50 items: both say yes 20, both no 15, A yes/B no 5, A no/B yes 10 -> po 0.7, pe 0.5, kappa 0.4
    a = ["y"] * 20 + ["n"] * 15 + ["y"] * 5 + ["n"] * 10
    b = ["y"] * 20 + ["n"] * 15 + ["n"] * 5 + ["y"] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0


def test_build_resolves_labels_and_survives_bad_rows(tmp_path: Path) -> None:
    source, out = tmp_path / "v4", tmp_path / "data"
    items = [_item(n, sentiment=("negative", "neutral", "positive")[n % 3]) for n in range(60)]
    bad = ["not json", json.dumps({**_item(99), "sentiment": "bullish"}), json.dumps(_item(1))]
    _write(source / "authored" / "wire_tweet.jsonl", items + bad)
    labels_b = [{"id": i["id"], "sentiment": i["sentiment"], "topic": i["topic"]} for i in items[:50]]
    labels_b[0]["sentiment"] = "positive"  # t-0000 disagrees, adjudicated to neutral
    labels_b[1]["sentiment"] = "neutral"  # t-0001 disagrees, dropped by adjudication
    labels_b[2]["sentiment"] = "negative"  # t-0002 disagrees, never adjudicated -> dropped
    _write(source / "labels_b.jsonl", labels_b)
    _write(
        source / "adjudicated.jsonl",
        [{"id": "t-0000", "sentiment": "neutral"}, {"id": "t-0001", "drop": True}],
    )
    stats = build_corpus(source, out, datasheet=None)
    assert stats["rejected"] == {"bad sentiment": 1, "duplicate id": 1, "malformed line": 1}
    assert stats["resolution"] == {
        "adjudicated": 1,
        "agreed": 47,
        "dropped by adjudication": 1,
        "single pass": 10,
        "unresolved disagreement, dropped": 1,
    }
    assert stats["total"] == 58 and stats["agreement_pass_a_vs_b"]["sentiment"]["n"] == 50
    assert 0.8 < stats["agreement_pass_a_vs_b"]["sentiment"]["kappa"] < 1.0
    assert stats["agreement_pass_a_vs_b"]["topic"]["kappa"] == 1.0
    rows = {r["id"]: r for name in SPLITS for r in load_split(name, out)}
    assert rows["t-0000"]["sentiment"] == "neutral" and rows["t-0000"]["labels"] == "adjudicated"
    assert "t-0001" not in rows and "t-0002" not in rows
    assert stats["relabelled_by_rule"] == {}


def test_off_topic_items_are_stored_neutral_and_counted(tmp_path: Path) -> None:
    source, out = tmp_path / "v4", tmp_path / "data"
    items = [
        {**_item(n, sentiment=("negative", "neutral", "positive")[n % 3]), "topic": "other"} for n in range(9)
    ]
    items += [_item(n, sentiment="negative") for n in range(9, 12)]
    _write(source / "authored" / "off_topic.jsonl", items)
    stats = build_corpus(source, out, datasheet=None)
    assert stats["relabelled_by_rule"] == {"off-topic set neutral (guideline rule 11)": 6}
    rows = [r for name in SPLITS for r in load_split(name, out)]
    assert {r["sentiment"] for r in rows if r["topic"] == "other"} == {"neutral"}
    assert sum(r["sentiment"] == "negative" for r in rows) == 3


def test_split_keeps_stories_together_and_stratifies_by_genre() -> None:
    items = [
        _item(
            n,
            sentiment=("neutral", "positive")[n % 2],
            genre=("macro", "wire_tweet")[n % 3 == 0],
            story=f"s{n // 2}",
        )
        for n in range(800)
    ]
    splits = assign_splits(items)
    story_split = {}
    for name, rows in splits.items():
        for r in rows:
            assert story_split.setdefault(r["story"], name) == name
    for genre in ("macro", "wire_tweet"):
        share = Counter(r["split"] for rows in splits.values() for r in rows if r["genre"] == genre)
        total = sum(share.values())
        assert 0.12 < share["test"] / total < 0.18 and 0.12 < share["validation"] / total < 0.18


def test_frozen_test_stories_stay_in_test(tmp_path: Path) -> None:
    source, out = tmp_path / "v4", tmp_path / "data"
    _write(source / "authored" / "macro.jsonl", [_item(n, genre="macro") for n in range(100)])
    build_corpus(source, out, datasheet=None)
    before = {r["story"] for r in load_split("test", out)}
    freeze_test(source, out)
    _write(source / "authored" / "macro.jsonl", [_item(n, genre="macro") for n in range(400)])
    build_corpus(source, out, datasheet=None)
    assert {r["story"] for r in load_split("test", out)} == before


def test_duplicate_texts_join_one_story() -> None:
    a, b, c = _item(1), {**_item(2), "text": "ITEM number 1, about company 1!"}, _item(3)
    merged = merge_duplicate_stories([a, b, {**c, "story": b["story"]}])
    assert [r["id"] for r in merged] == ["t-0001", "t-0003"]
    assert merged[1]["story"] == a["story"]


def test_import_merges_parts_per_genre(tmp_path: Path) -> None:
    origin, source = tmp_path / "origin", tmp_path / "v4"
    _write(origin / "authored" / "macro.part01.jsonl", [_item(1, genre="macro")])
    _write(origin / "authored" / "macro.part02.jsonl", [_item(2, genre="macro")])
    _write(origin / "labels_b" / "b1.jsonl", [{"id": "t-0001", "sentiment": "neutral", "topic": "earnings"}])
    assert import_items(origin, source) == {"macro": 2, "labels_b": 1}
    assert len((source / "authored" / "macro.jsonl").read_text().splitlines()) == 2


def test_shipped_splits_are_the_build_of_the_shipped_sources(tmp_path: Path) -> None:
    stats = build_corpus(V4_DIR, tmp_path, datasheet=None)
    for name in SPLITS:
        assert (tmp_path / f"{name}.jsonl").read_text() == (DATA_DIR / f"{name}.jsonl").read_text(), name
    assert json.loads((DATA_DIR / "stats.json").read_text()) == stats
