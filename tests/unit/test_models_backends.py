"""Tiny-model round trip through the model directory, torch and ONNX Runtime backends, and parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.base import SENTIMENTS, Classifier, Prediction
from models.export import PARITY_TOLERANCE, ParityError, export_onnx, parity, quantize_int8
from models.modeldir import ModelDir, ModelDirError, content_hash
from models.onnx_backend import OnnxClassifier
from models.runtime import load_classifier, resolve_backend
from models.samples import PARITY_SENTENCES, SMOKE_RECORDS
from models.settings import ModelSettings
from models.torch_backend import TorchClassifier


def test_model_dir_round_trip(tiny_model_dir: Path) -> None:
    md = ModelDir(tiny_model_dir)
    assert md.model_version == content_hash(tiny_model_dir)
    assert md.labels["sentiment"] == list(SENTIMENTS)
    assert md.labels["topic"] == sorted({r["topic"] for r in SMOKE_RECORDS})
    assert md.meta["onnx"]["fp32"]["parity_max_abs_diff"] <= PARITY_TOLERANCE


def test_incomplete_dir_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="finpulse model train"):
        ModelDir(tmp_path)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_load_classifier_predicts(tiny_model_dir: Path, backend: str) -> None:
    clf = load_classifier(ModelSettings(dir=tiny_model_dir, backend=backend, onnx_variant="fp32"))
    assert isinstance(clf, Classifier)
    preds = clf.predict_batch(list(PARITY_SENTENCES))
    assert len(preds) == len(PARITY_SENTENCES) and all(isinstance(p, Prediction) for p in preds)
    p = preds[0]
    assert p.p_negative + p.p_neutral + p.p_positive == pytest.approx(1.0)
    assert p.sentiment in SENTIMENTS and p.topic in ModelDir(tiny_model_dir).labels["topic"]
    assert clf.model_version == ModelDir(tiny_model_dir).model_version
    row = p.as_dict()
    assert row["score"] == pytest.approx(p.p_positive - p.p_negative, abs=1e-6)
    clf.close()


def test_onnx_matches_torch_within_tolerance(tiny_model_dir: Path) -> None:
    md = ModelDir(tiny_model_dir)
    assert parity(md, "fp32") <= PARITY_TOLERANCE
    torch_clf = TorchClassifier(md, 64, 3)
    onnx_clf = OnnxClassifier(md, 64, 3, variant="fp32")
    a = torch_clf.predict_batch(list(PARITY_SENTENCES))
    b = onnx_clf.predict_batch(list(PARITY_SENTENCES))
    assert [x.sentiment for x in a] == [x.sentiment for x in b]
    assert np.allclose([x.score for x in a], [x.score for x in b], atol=1e-4)


def test_predictions_do_not_depend_on_batch_composition(tiny_model_dir: Path) -> None:
    clf = OnnxClassifier(ModelDir(tiny_model_dir), 64, 2, variant="fp32")
    together = clf.logits(list(PARITY_SENTENCES))
    alone = [clf.logits([s]) for s in PARITY_SENTENCES]
    for head in (0, 1):
        assert np.allclose(together[head], np.vstack([a[head] for a in alone]), atol=1e-5)


def test_auto_backend_on_cpu_prefers_onnx(tiny_model_dir: Path) -> None:
    md = ModelDir(tiny_model_dir)
    assert resolve_backend(ModelSettings(dir=tiny_model_dir, device="cpu"), md) == "onnx"


def test_int8_is_recorded_and_offered_only_under_one_point(tiny_model_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "m"
    shutil.copytree(tiny_model_dir, work)
    md = ModelDir(work)
    record = quantize_int8(md, list(SMOKE_RECORDS))
    assert md.onnx_path("int8").exists() and "accuracy_loss_points" in record
    meta = json.loads((work / "finpulse_model.json").read_text())
    meta["onnx"]["int8"]["accuracy_loss_points"] = 0.5
    (work / "finpulse_model.json").write_text(json.dumps(meta))
    assert load_classifier(ModelSettings(dir=work, backend="onnx")).backend == "onnx-int8"
    meta["onnx"]["int8"]["accuracy_loss_points"] = 1.5
    (work / "finpulse_model.json").write_text(json.dumps(meta))
    assert load_classifier(ModelSettings(dir=work, backend="onnx")).backend == "onnx-fp32"


def test_export_fails_when_parity_is_off(tiny_model_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "m"
    shutil.copytree(tiny_model_dir, work)
    with pytest.raises(ParityError):
        export_onnx(ModelDir(work), tolerance=-1.0)
    assert not (work / "model.onnx").exists()
