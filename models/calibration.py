"""Calibrated probabilities: temperature scaling fitted on validation, expected calibration error,
and the class-prior adjustment for streams whose label mix differs from the training mix.

Temperature scaling divides a head's logits by one scalar T fitted to minimise the negative
log-likelihood on the validation split; it changes confidences, never the arg-max label.

The prior adjustment (Saerens et al., 2002) re-weights calibrated probabilities by
``target_prior / model_prior`` and renormalises. ``model_prior`` is the mean calibrated
probability on validation (what the model expects a training-like stream to look like), so a
target equal to it leaves predictions unchanged. When a stream's mix is unknown, ``estimate_prior``
finds it from unlabelled traffic with the same paper's EM: alternate re-weighting the calibrated
probabilities and re-estimating the prior as their mean, until it stops moving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

ECE_BINS = 15
MIN_PRIOR_SHARE = 0.01


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer labels under softmax(logits / T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(
    logits: np.ndarray, labels: Sequence[int], low: float = 0.05, high: float = 20.0
) -> float:
    """The T in [low, high] minimising validation NLL (golden-section search over log T)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(60):
        if nll(logits, labels, math.exp(c)) < nll(logits, labels, math.exp(d)):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return round(math.exp((a + b) / 2), 4)


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS
) -> float:
    """ECE: |accuracy - mean confidence| per equal-width confidence bin, weighted by the bin's share."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return 0.0
    index = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        in_bin = index == k
        if in_bin.any():
            total += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def head_calibration(logits: np.ndarray, labels: Sequence[int]) -> dict[str, float | list[float]]:
    """Fitted temperature, ECE before and after, and the model's mean calibrated distribution."""
    labels = np.asarray(labels, dtype=np.int64)
    temperature = fit_temperature(logits, labels)
    raw, scaled = softmax(logits), softmax(np.asarray(logits) / temperature)

    def ece(probs: np.ndarray) -> float:
        return round(expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels), 4)

    return {
        "temperature": temperature,
        "ece_uncalibrated": ece(raw),
        "ece": ece(scaled),
        "model_prior": [round(float(p), 4) for p in scaled.mean(axis=0)],
        "n": len(labels),
    }


def parse_prior(spec: str | None, labels: Sequence[str]) -> np.ndarray | None:
    """``"negative=0.15,neutral=0.65,positive=0.20"`` -> a probability vector in label order (None: off)."""
    if not spec:
        return None
    values: dict[str, float] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in labels:
            raise ValueError(
                f"bad class prior {item!r}; expected e.g. {labels[0]}=0.15 for each of {list(labels)}"
            )
        values[name.strip()] = float(value)
    if set(values) != set(labels) or any(v <= 0 for v in values.values()):
        raise ValueError(f"a class prior needs a positive share for each of {list(labels)}")
    vector = np.array([values[name] for name in labels], dtype=np.float64)
    return vector / vector.sum()


def prior_weights(target: np.ndarray | None, model_prior: Sequence[float] | None) -> np.ndarray | None:
    """Multipliers that move probabilities from the model's prior to the target stream's prior."""
    if target is None:
        return None
    source = np.asarray(model_prior if model_prior is not None else np.full(len(target), 1 / len(target)))
    return target / np.maximum(source, 1e-6)


def estimate_prior(
    probs: np.ndarray,
    model_prior: Sequence[float],
    max_iter: int = 1000,
    tolerance: float = 1e-8,
    floor: float = MIN_PRIOR_SHARE,
) -> np.ndarray:
    """The class prior of an unlabelled stream, from its calibrated probabilities (Saerens EM).

    Each share is kept at ``floor`` or above: a class absent from a calm sample must still be
    detectable when it appears (a zero prior would silence it for good).
    """
    probs = np.asarray(probs, dtype=np.float64)
    source = np.maximum(np.asarray(model_prior, dtype=np.float64), 1e-6)
    if len(probs) == 0:
        return source / source.sum()
    prior = source.copy()
    for _ in range(max_iter):
        updated = reweight(probs, prior_weights(prior, source)).mean(axis=0)
        converged = np.abs(updated - prior).max() < tolerance
        prior = updated
        if converged:
            break
    prior = np.maximum(prior, floor)
    return prior / prior.sum()


def format_prior(prior: Sequence[float], labels: Sequence[str]) -> str:
    """A prior vector as the ``negative=0.15,neutral=0.65,positive=0.20`` spec ``parse_prior`` reads."""
    return ",".join(f"{name}={share:.4f}" for name, share in zip(labels, prior, strict=True))


def reweight(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Probabilities multiplied by per-class ``weights`` and renormalised row-wise."""
    weighted = np.asarray(probs, dtype=np.float64) * weights
    return weighted / weighted.sum(axis=-1, keepdims=True)


def calibrated_probs(
    logits: np.ndarray, temperature: float = 1.0, weights: np.ndarray | None = None
) -> np.ndarray:
    """softmax(logits / T), re-weighted by the prior adjustment when one is configured."""
    probs = softmax(np.asarray(logits) / temperature)
    return probs if weights is None else reweight(probs, weights)


def calibration_section(meta: Mapping) -> Mapping:
    """The ``calibration`` section of a model's metadata ({} for models trained before it existed)."""
    return meta.get("calibration", {}) or {}
