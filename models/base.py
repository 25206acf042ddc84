"""The classifier contract shared by the stream, `finpulse classify`, replay and benchmarks.

Kept free of torch/onnxruntime imports so stages can depend on it cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Prediction:
    """Topic and sentiment for one text."""

    topic: str
    topic_prob: float
    sentiment: str
    p_negative: float
    p_neutral: float
    p_positive: float

    @property
    def score(self) -> float:
        """Signed sentiment score in [-1, 1]: p_positive - p_negative."""
        return self.p_positive - self.p_negative

    @property
    def confidence(self) -> float:
        """Probability of the chosen sentiment label (calibrated when the model carries a temperature)."""
        return max(self.p_negative, self.p_neutral, self.p_positive)

    def as_dict(self) -> dict[str, float | str]:
        """Fields plus the derived score and confidence, as written by `finpulse classify`."""
        return {**asdict(self), "score": round(self.score, 6), "confidence": round(self.confidence, 6)}


@runtime_checkable
class Classifier(Protocol):
    """Lifecycle: construct (load weights) -> predict_batch(...) many times -> close()."""

    model_version: str
    backend: str

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify a batch of texts; one Prediction per text, in order."""
        ...

    def close(self) -> None:
        """Release sessions, GPU memory and threads."""
        ...
