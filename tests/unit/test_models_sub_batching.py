"""Micro-batching: padding to the longest sequence, length-sorted sub-batches, order restored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models.base import Classifier
from models.calibration import softmax
from models.modeldir import ModelDir
from models.sub_batching import BatchedClassifier, pad_batch, plan_sub_batches


def test_similar_lengths_stay_one_call() -> None:
    assert plan_sub_batches([20, 18, 22], best_batch_size=8) == [[1, 0, 2]]


def test_one_long_text_does_not_pad_the_short_ones() -> None:
    lengths = [20] * 15 + [128]
    plan = plan_sub_batches(lengths, best_batch_size=32, call_overhead_tokens=32)
    assert plan == [list(range(15)), [15]]
    # with a GPU-sized call cost one padded call is cheaper than two
    assert plan_sub_batches(lengths, best_batch_size=32, call_overhead_tokens=4096) == [list(range(16))]


def test_large_batch_is_sorted_into_sub_batches_covering_every_index() -> None:
    lengths = [9, 2, 7, 2, 5, 1, 8]
    plan = plan_sub_batches(lengths, best_batch_size=3, call_overhead_tokens=1000)
    assert len(plan) == 3 and all(len(p) <= 3 for p in plan)
    assert sorted(i for p in plan for i in p) == list(range(len(lengths)))
    flat = [lengths[i] for p in plan for i in p]
    assert flat == sorted(flat)


def test_plan_is_the_cheapest_cut() -> None:
    lengths = [3, 50, 4, 48, 5, 47]
    overhead = 10
    plan = plan_sub_batches(lengths, best_batch_size=4, call_overhead_tokens=overhead)
    cost = sum(overhead + len(p) * max(lengths[i] for i in p) for p in plan)
    assert cost == 3 * 5 + 3 * 50 + 2 * overhead
    assert plan_sub_batches([], best_batch_size=4) == []


def test_pad_batch_pads_to_longest_not_a_fixed_length() -> None:
    ids, mask = pad_batch([[101, 5, 102], [101, 102]], pad_id=0)
    assert ids.shape == (2, 3) and ids.dtype == np.int64
    assert ids.tolist() == [[101, 5, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_softmax_rows_sum_to_one() -> None:
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(p.sum(axis=1), 1.0) and p[0, 0] == pytest.approx(1.0)


class _RecordingClassifier(BatchedClassifier):
    """Fake backend whose logits encode the first token after [CLS] and which records batch shapes."""

    backend = "fake"

    def __init__(self, model_dir: ModelDir, best_batch_size: int) -> None:
        super().__init__(model_dir, max_length=32, best_batch_size=best_batch_size)
        self.shapes: list[tuple[int, int]] = []

    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.shapes.append(input_ids.shape)
        assert (attention_mask.sum(axis=1) == (input_ids != self._pad_id).sum(axis=1)).all()
        n = len(input_ids)
        sent = np.zeros((n, 3), dtype=np.float32)
        sent[:, 0] = attention_mask.sum(axis=1)  # length, so we can check order
        return sent, np.zeros((n, len(self.topics)), dtype=np.float32)


def _texts() -> Sequence[str]:
    return ["word " * k for k in (7, 1, 12, 3, 3, 9, 0, 5, 2, 11)]


def test_predictions_come_back_in_input_order(tiny_model_dir: Path) -> None:
    clf = _RecordingClassifier(ModelDir(tiny_model_dir), best_batch_size=4)
    assert isinstance(clf, Classifier)
    texts = _texts()
    sent, _ = clf.logits(texts)
    expected = [len(ids) for ids in clf.tokenize(texts)]
    assert sent[:, 0].tolist() == expected
    assert len(clf.shapes) == 3
    # each sub-batch is padded only to its own longest member, and sub-batches grow in length
    widths = [w for _, w in clf.shapes]
    assert widths == sorted(widths) and widths[-1] == max(expected) and widths[0] < max(expected)
    assert len(clf.predict_batch(texts)) == len(texts)


def test_empty_batch_and_empty_text(tiny_model_dir: Path) -> None:
    clf = _RecordingClassifier(ModelDir(tiny_model_dir), best_batch_size=4)
    assert clf.predict_batch([]) == []
    assert len(clf.predict_batch([""])) == 1


def test_truncates_to_max_length(tiny_model_dir: Path) -> None:
    clf = _RecordingClassifier(ModelDir(tiny_model_dir), best_batch_size=4)
    clf.predict_batch(["word " * 500])
    assert clf.shapes == [(1, 32)]
