"""Backend-independent micro-batching: tokenise once, sort by length, cut into sub-batches, restore order.

Every backend subclasses :class:`BatchedClassifier` and implements only ``_infer`` on padded
``int64`` arrays, so padding/sorting behaviour is identical (and tested once) for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from models.base import Prediction
from models.calibration import calibrated_probs, calibration_section, parse_prior, prior_weights
from models.modeldir import TOKENIZER, ModelDir


def load_tokenizer(model_dir: ModelDir, max_length: int) -> Tokenizer:
    """The model's fast tokenizer, truncating to ``max_length`` and never padding on its own."""
    tokenizer = Tokenizer.from_file(str(model_dir.path / TOKENIZER))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


# Cost of one backend call in padded-token units: what splitting a batch must save in padding to pay.
# Measured on 2 CPU cores (ONNX Runtime int8, MiniLM-L6): a call costs about as much as 32 tokens.
# GPU backends set a far larger value, since there a call costs as much as thousands of tokens.
CPU_CALL_OVERHEAD_TOKENS = 32
GPU_CALL_OVERHEAD_TOKENS = 4096


def plan_sub_batches(
    lengths: Sequence[int], best_batch_size: int, call_overhead_tokens: int = CPU_CALL_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Indices of each sub-batch: sorted by length, cut where it costs least.

    Every sub-batch is padded to its longest member and holds at most ``best_batch_size`` texts. The
    cut points minimise padded tokens plus ``call_overhead_tokens`` per call (exact, by dynamic
    programming over the sorted lengths), so one long article no longer pads a batch of headlines
    to its length, while similar lengths stay in one call.
    """
    n = len(lengths)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: lengths[i])
    ordered = [lengths[i] for i in order]
    cost = [0.0] + [float("inf")] * n  # cost[j]: cheapest plan of the first j sorted texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = ordered[j - 1]  # sorted: the last member of a sub-batch ending at j is its longest
        for i in range(max(0, j - best_batch_size), j):
            candidate = cost[i] + call_overhead_tokens + (j - i) * longest
            if candidate < cost[j]:
                cost[j], cut[j] = candidate, i
    bounds = []
    j = n
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    return [order[i:j] for i, j in reversed(bounds)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence: (input_ids, attention_mask), both int64 [batch, longest]."""
    longest = max(len(s) for s in sequences)
    input_ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


class BatchedClassifier(ABC):
    """Implements the Classifier protocol on top of a backend's ``_infer``."""

    backend: str = "abstract"
    call_overhead_tokens: int = CPU_CALL_OVERHEAD_TOKENS

    def __init__(
        self, model_dir: ModelDir, max_length: int, best_batch_size: int, sentiment_prior: str | None = None
    ) -> None:
        self.model_dir = model_dir
        self.model_version = model_dir.model_version
        self.max_length = max_length
        self.best_batch_size = best_batch_size
        self.topics = model_dir.labels["topic"]
        self.sentiments = model_dir.labels["sentiment"]
        self._tokenizer = load_tokenizer(model_dir, max_length)
        self._pad_id = model_dir.pad_id
        calibration = calibration_section(model_dir.meta)
        self.sentiment_temperature = float(calibration.get("sentiment", {}).get("temperature", 1.0))
        self.topic_temperature = float(calibration.get("topic", {}).get("temperature", 1.0))
        self._prior_weights = prior_weights(
            parse_prior(sentiment_prior, self.sentiments), calibration.get("sentiment", {}).get("model_prior")
        )

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
        for idx in plan_sub_batches([len(x) for x in ids], self.best_batch_size, self.call_overhead_tokens):
            sent[idx], topic[idx] = self._infer(*pad_batch([ids[i] for i in idx], self._pad_id))
        return sent, topic

    def _prediction(self, sent_logits: np.ndarray, topic_logits: np.ndarray) -> Prediction:
        ps = calibrated_probs(sent_logits, self.sentiment_temperature, self._prior_weights)
        pt = calibrated_probs(topic_logits, self.topic_temperature)
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
