"""Temperature scaling, ECE and the class-prior adjustment (pure logic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.calibration import (
    calibrated_probs,
    estimate_prior,
    expected_calibration_error,
    fit_temperature,
    format_prior,
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


def _calibrated_stream(prior: list[float], n: int = 6000, seed: int = 1) -> np.ndarray:
    """Posteriors of a calibrated model trained on a uniform mix, for texts drawn with ``prior``."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=prior)
    logits = rng.normal(0, 1.0, size=(n, 3))
    shift = 1.5  # unit-variance Gaussian evidence: the uniform-prior posterior is softmax(shift * x)
    logits[np.arange(n), labels] += shift
    return calibrated_probs(shift * logits)


def test_em_recovers_a_shifted_stream_prior_without_labels() -> None:
    true_prior = [0.15, 0.65, 0.20]
    probs = _calibrated_stream(true_prior)
    # a model trained on a uniform mix expects a third of each; the stream is neutral-heavy
    estimate = estimate_prior(probs, [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(estimate, true_prior, atol=0.03)
    np.testing.assert_allclose(estimate.sum(), 1.0)
    assert parse_prior(format_prior(estimate, LABELS), LABELS) == pytest.approx(estimate, abs=1e-4)


def test_em_leaves_a_training_like_stream_at_the_model_prior() -> None:
    probs = _calibrated_stream([1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(estimate_prior(probs, probs.mean(axis=0)), probs.mean(axis=0), atol=1e-3)
    assert estimate_prior(np.empty((0, 3)), [0.2, 0.5, 0.3]) == pytest.approx([0.2, 0.5, 0.3])


def test_adapting_predictions_to_the_stream_raises_accuracy_on_a_shifted_mix() -> None:
    from models.base import Prediction
    from models.evaluation import adapt_to_stream

    true_prior = [0.1, 0.8, 0.1]
    rng = np.random.default_rng(2)
    labels = rng.choice(3, size=4000, p=true_prior)
    logits = rng.normal(0, 1.0, size=(4000, 3))
    logits[np.arange(4000), labels] += 1.2
    probs = calibrated_probs(1.2 * logits)
    preds = [Prediction("other", 1.0, LABELS[int(p.argmax())], *map(float, p)) for p in probs]
    prior, adapted = adapt_to_stream(preds, [1 / 3, 1 / 3, 1 / 3])
    assert prior[1] > 0.7
    before = np.mean([LABELS.index(p.sentiment) == y for p, y in zip(preds, labels, strict=True)])
    after = np.mean([LABELS.index(p.sentiment) == y for p, y in zip(adapted, labels, strict=True)])
    assert after > before + 0.05
    assert all(abs(p.p_negative + p.p_neutral + p.p_positive - 1) < 1e-9 for p in adapted)


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
