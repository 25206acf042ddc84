"""Local-file loaders (PhraseBank, CSV, JSONL), label normalisation, splitting and the baseline/metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.datasets import (
    DatasetError,
    normalise_sentiment,
    parse_label_map,
    read_file,
    shortcut_cues,
    split_records,
    without_cues,
)
from models.evaluation import head_metrics, negative_by_confidence, tfidf_baseline, to_markdown
from models.samples import SMOKE_RECORDS


def test_phrasebank_latin1_lines(tmp_path: Path) -> None:
    path = tmp_path / "Sentences_AllAgree.txt"
    path.write_bytes(
        "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn .@positive\n"
        "The company's CEO said it was \xe9lite news @ best@neutral\n"
        "\n"
        "Sales fell 5 % .@negative\n".encode("latin-1")
    )
    rows = read_file(path)
    assert [r["sentiment"] for r in rows] == ["positive", "neutral", "negative"]
    assert rows[1]["text"] == "The company's CEO said it was \xe9lite news @ best"
    assert all(r["topic"] is None for r in rows)


def test_phrasebank_rejects_lines_without_label(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("no label here\n")
    with pytest.raises(DatasetError, match="sentence@label"):
        read_file(path)


def test_csv_with_custom_columns_and_label_map(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_text('tweet,y,cat\n"$AAPL up, nice",2,earnings\nmeh,1,\n"down, bad",0,markets\n')
    rows = read_file(
        path,
        text_column="tweet",
        label_column="y",
        topic_column="cat",
        label_map=parse_label_map("0=negative,1=neutral,2=positive"),
    )
    assert [(r["text"], r["sentiment"], r["topic"]) for r in rows] == [
        ("$AAPL up, nice", "positive", "earnings"),
        ("meh", "neutral", None),
        ("down, bad", "negative", "markets"),
    ]


def test_jsonl_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"text": "Stocks rally", "label": "Bullish"}\n\n{"text": "Stocks sink", "label": "bearish"}\n'
    )
    assert [r["sentiment"] for r in read_file(path)] == ["positive", "negative"]
    with pytest.raises(DatasetError, match="needs columns"):
        read_file(path, label_column="sentiment")


def test_malformed_rows_are_skipped_with_their_reasons(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "desk.jsonl"
    path.write_text(
        '{"text": "Profit warning sends $ACME down", "label": "bearish"}\n'
        "not json\n"
        '{"text": 5, "label": "neutral"}\n'
        '{"text": "ok\\u0000 \\u202e", "label": "neutral"}\n'
        '{"label": "negative"}\n'
        "[]\n"
        '{"text": "truncated", "label": "pos'
    )
    rows = read_file(path)
    assert [(r["text"], r["sentiment"]) for r in rows] == [
        ("Profit warning sends $ACME down", "negative"),
        ("ok\x00 \u202e", "neutral"),
    ]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "skipped 5 rows" in warning and "2 not valid JSON (first at line 2)" in warning


def test_csv_short_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "desk.csv"
    path.write_text("text,label\nStocks rally,positive\nonly text\n,negative\n")
    assert [r["text"] for r in read_file(path)] == ["Stocks rally"]


@pytest.mark.parametrize("content", ["", "\n\n", "not json\n", '{"text": "x"}\n'])
def test_file_without_labelled_rows_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match="no labelled rows"):
        read_file(path)


def test_unknown_label_in_a_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "neutral"}\n{"text": "b", "label": "postive"}\n')
    with pytest.raises(DatasetError, match=r"d\.jsonl:2: unknown sentiment label 'postive'"):
        read_file(path)


def test_unknown_label_is_an_error() -> None:
    with pytest.raises(DatasetError, match="label map"):
        normalise_sentiment("2")
    assert normalise_sentiment(" NEG ") == "negative"


def test_split_is_stratified_and_complete() -> None:
    rows = [
        {"text": str(i), "sentiment": ("negative", "neutral", "positive")[i % 3], "topic": None}
        for i in range(60)
    ]
    parts = split_records(rows, validation=0.1, test=0.2, seed=1)
    assert sorted(r["text"] for p in parts.values() for r in p) == sorted(r["text"] for r in rows)
    assert len(parts["test"]) == 12 and len(parts["validation"]) == 6
    assert {r["sentiment"] for r in parts["test"]} == {"negative", "neutral", "positive"}


def test_head_metrics_and_markdown() -> None:
    m = head_metrics(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["confusion"]["matrix"] == [[1, 1], [0, 1]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5)
    report = {"model_version": "x", "split": "t", "model": {"sentiment": m}, "baseline": {"sentiment": m}}
    md = to_markdown(report)
    assert "TF-IDF" in md and "| a | 1 | 1 |" in md


def test_negative_by_confidence_counts_only_sure_negative_calls() -> None:
    y_true = ["negative", "negative", "neutral", "neutral", "positive"]
    y_pred = ["negative", "neutral", "negative", "negative", "negative"]
    confidence = [0.95, 0.99, 0.85, 0.65, 0.5]
    rows = {row["min_confidence"]: row for row in negative_by_confidence(y_true, y_pred, confidence)}
    assert rows[0.6] == {"min_confidence": 0.6, "calls": 3, "precision": pytest.approx(1 / 3), "recall": 0.5}
    assert rows[0.8]["calls"] == 2 and rows[0.8]["precision"] == pytest.approx(0.5)
    assert rows[0.9] == {"min_confidence": 0.9, "calls": 1, "precision": 1.0, "recall": 0.5}
    report = {"model": {"sentiment": {**head_metrics(y_true, y_pred, ["negative", "neutral", "positive"]),
                                      "negative_by_confidence": list(rows.values())}}}  # fmt: skip
    assert "| 0.9 | 1 | 1.000 | 0.500 |" in to_markdown(report)
    assert negative_by_confidence(["neutral"], ["neutral"], [0.9])[0] == {
        "min_confidence": 0.6, "calls": 0, "precision": 0.0, "recall": 0.0,
    }  # fmt: skip


def test_tfidf_baseline_scores_both_heads() -> None:
    rows = list(SMOKE_RECORDS)
    result = tfidf_baseline(rows, rows)
    assert set(result) == {"sentiment", "topic"}
    assert result["topic"]["accuracy"] > 0.8  # fits its own training data


def test_user_rows_of_one_story_share_a_split() -> None:
    from models.datasets import split_records

    rows = [
        {"text": f"t{i}", "sentiment": "neutral", "topic": None, "story": f"s{i // 4}"} for i in range(200)
    ]
    split_of: dict[str, set[str]] = {}
    for name, part in split_records(rows, seed=3).items():
        for r in part:
            split_of.setdefault(r["story"], set()).add(name)
    assert all(len(names) == 1 for names in split_of.values())
    assert sum(len(p) for p in split_records(rows).values()) == 200


def test_shortcut_cues_are_the_words_one_label_owns() -> None:
    rows = [{"text": f"Acme shares soar {i}", "sentiment": "positive"} for i in range(10)]
    rows += [{"text": f"Acme shares slump {i}", "sentiment": "negative"} for i in range(10)]
    rows += [{"text": "Acme holds its meeting", "sentiment": "neutral"}]
    assert shortcut_cues(rows, min_count=10) == ["slump", "soar"]  # "acme", "shares" span two labels


def test_without_cues_drops_emoji_and_cue_words_only() -> None:
    rows = [{"text": "to the moon 🚀🚀 $TSLA Soars, profit ↑ rose", "sentiment": "positive", "id": "x"}]
    (out,) = without_cues(rows, ["soars"])
    assert out == {"text": "to the moon $TSLA , profit rose", "sentiment": "positive", "id": "x"}
    assert without_cues(rows, [])[0]["text"] == "to the moon $TSLA Soars, profit rose"
