"""Temperature scaling, ECE and the class-prior adjustment (pure logic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.calibration import (
    calibrated_probs,
    expected_calibration_error,
    fit_temperature,
    head_calibration,
    parse_prior,
    prior_weights,
)

LABELS = ("negative", "neutral", "positive")


def _overconfident(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true temperature is 3: the labels are drawn from softmax(logits / 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, 3))
    p = np.exp(logits / 3)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    return logits, labels


def test_temperature_recovers_the_true_scale_and_lowers_ece() -> None:
    logits, labels = _overconfident()
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.15)
    report = head_calibration(logits, labels)
    assert report["ece"] < report["ece_uncalibrated"] / 2


def test_ece_is_zero_when_confidence_equals_accuracy() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)


def test_prior_adjustment_shifts_towards_the_target_mix_and_is_neutral_at_the_model_prior() -> None:
    logits = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    model_prior = [0.3, 0.4, 0.3]
    same = calibrated_probs(logits, 1.0, prior_weights(np.array(model_prior), model_prior))
    np.testing.assert_allclose(same, calibrated_probs(logits))
    target = parse_prior("negative=0.1,neutral=0.8,positive=0.1", LABELS)
    shifted = calibrated_probs(logits, 1.0, prior_weights(target, model_prior))
    assert (shifted[:, 1] > calibrated_probs(logits)[:, 1]).all()
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0)


@pytest.mark.parametrize("spec", ["negative=0.5,neutral=0.5", "negative=0,neutral=0.5,positive=0.5", "bad"])
def test_bad_priors_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_prior(spec, LABELS)


def test_classifier_applies_the_configured_stream_prior(tiny_model_dir: Path) -> None:
    from models.runtime import load_classifier
    from models.settings import ModelSettings

    texts = ["Shares soar after record profit", "Bank fined over fraud"]
    plain = load_classifier(ModelSettings(dir=tiny_model_dir, backend="onnx")).predict_batch(texts)
    skewed = load_classifier(
        ModelSettings(
            dir=tiny_model_dir, backend="onnx", sentiment_prior="negative=0.01,neutral=0.98,positive=0.01"
        )
    ).predict_batch(texts)
    assert all(b.p_neutral > a.p_neutral for a, b in zip(plain, skewed, strict=True))
