"""The bring-your-own-labels learning curve: a fixed held-out rest, whole stories, every point scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.learning_curve import epochs_for, learning_curve, pool_and_heldout
from models.samples import SMOKE_RECORDS


def test_pool_and_heldout_keep_stories_whole_and_the_rest_fixed() -> None:
    rows = [{"text": f"t{i}", "sentiment": "neutral", "story": f"s{i // 2}"} for i in range(40)]
    pool, heldout = pool_and_heldout(rows, 9, seed=1)
    assert len(pool) == 10 and len(heldout) == 30  # the pool ends on a whole story
    assert {r["story"] for r in pool}.isdisjoint({r["story"] for r in heldout})
    assert pool_and_heldout(rows, 9, seed=1) == (pool, heldout)
    with pytest.raises(ValueError, match="nothing to score"):
        pool_and_heldout(rows, 40, seed=1)


def test_small_sets_get_more_epochs_within_the_bound() -> None:
    assert [epochs_for(n) for n in (10, 250, 1000, 4000)] == [4, 4, 2, 1]


def test_curve_scores_the_shipped_model_and_each_size_on_one_heldout_set(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "desk.jsonl"
    rows = [{"text": f"{r['text']} ({i})", "label": r["sentiment"]} for i in range(4) for r in SMOKE_RECORDS]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = learning_curve(data, tiny_model_dir, [20, 40])
    assert [p["train_rows"] for p in result["points"]] == [0, 20, 40]
    assert result["heldout_rows"] == len(rows) - 40
    assert all(0 <= p["sentiment_accuracy"] <= 1 for p in result["points"])


def test_learning_curve_command_answers_a_missing_file_with_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["learning-curve", "--data", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
