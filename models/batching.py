"""Backend-independent micro-batching: tokenise once, sort by length, pad per sub-batch, restore order.

Every backend subclasses :class:`BatchedClassifier` and implements only ``_infer`` on padded
``int64`` arrays, so padding/sorting behaviour is identical (and tested once) for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from models.base import Prediction
from models.modeldir import TOKENIZER, ModelDir


def load_tokenizer(model_dir: ModelDir, max_length: int) -> Tokenizer:
    """The model's fast tokenizer, truncating to ``max_length`` and never padding on its own."""
    tokenizer = Tokenizer.from_file(str(model_dir.path / TOKENIZER))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def plan_sub_batches(lengths: Sequence[int], best_batch_size: int) -> list[list[int]]:
    """Indices of each sub-batch: one batch when small, else length-sorted chunks of best_batch_size."""
    n = len(lengths)
    if n <= best_batch_size:
        return [list(range(n))]
    order = sorted(range(n), key=lambda i: lengths[i])
    return [order[i : i + best_batch_size] for i in range(0, n, best_batch_size)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence: (input_ids, attention_mask), both int64 [batch, longest]."""
    longest = max(len(s) for s in sequences)
    input_ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class BatchedClassifier(ABC):
    """Implements the Classifier protocol on top of a backend's ``_infer``."""

    backend: str = "abstract"

    def __init__(self, model_dir: ModelDir, max_length: int, best_batch_size: int) -> None:
        self.model_dir = model_dir
        self.model_version = model_dir.model_version
        self.max_length = max_length
        self.best_batch_size = best_batch_size
        self.topics = model_dir.labels["topic"]
        self.sentiments = model_dir.labels["sentiment"]
        self._tokenizer = load_tokenizer(model_dir, max_length)
        self._pad_id = model_dir.pad_id

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of every text (truncated, unpadded), in one fast-tokenizer call."""
        return [enc.ids for enc in self._tokenizer.encode_batch([t or "" for t in texts])]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify texts; sub-batches are length-sorted internally, results come back in input order."""
        if not texts:
            return []
        sent, topic = self.logits(texts)
        return [self._prediction(s, t) for s, t in zip(sent, topic, strict=True)]

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (sentiment, topic) logits as float32 arrays, in input order."""
        ids = self.tokenize(texts)
        sent = np.zeros((len(ids), len(self.sentiments)), dtype=np.float32)
        topic = np.zeros((len(ids), len(self.topics)), dtype=np.float32)
        for idx in plan_sub_batches([len(x) for x in ids], self.best_batch_size):
            sent[idx], topic[idx] = self._infer(*pad_batch([ids[i] for i in idx], self._pad_id))
        return sent, topic

    def _prediction(self, sent_logits: np.ndarray, topic_logits: np.ndarray) -> Prediction:
        ps = softmax(sent_logits)
        pt = softmax(topic_logits)
        t = int(pt.argmax())
        return Prediction(
            topic=self.topics[t],
            topic_prob=float(pt[t]),
            sentiment=self.sentiments[int(ps.argmax())],
            p_negative=float(ps[0]),
            p_neutral=float(ps[1]),
            p_positive=float(ps[2]),
        )

    @abstractmethod
    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on one padded sub-batch: (sentiment_logits, topic_logits) as numpy."""

    def close(self) -> None:  # noqa: B027 - backends without resources need nothing here
        """Release backend resources (default: nothing)."""
