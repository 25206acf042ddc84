"""GPU backends: torch CUDA fp16 and TensorRT, checked against torch fp32 on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models.modeldir import ModelDir
from models.runtime import load_classifier, resolve_backend
from models.samples import PARITY_SENTENCES
from models.settings import ModelSettings
from models.torch_backend import TorchClassifier

pytestmark = pytest.mark.gpu

FP16_TOLERANCE = 2e-2
needs_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="tensorrt is not installed (PyPI's tensorrt wheels fetch their libraries from NVIDIA's index)",
)


def _reference(md: ModelDir) -> tuple[np.ndarray, np.ndarray]:
    return TorchClassifier(md, 64, 3, device="cpu").logits(list(PARITY_SENTENCES))


def test_torch_cuda_fp16_matches_cpu_fp32(tiny_model_dir: Path) -> None:
    md = ModelDir(tiny_model_dir)
    gpu = TorchClassifier(md, 64, 3, device="cuda", fp16=True)
    assert gpu.backend == "torch-cuda-fp16"
    for ref, got in zip(_reference(md), gpu.logits(list(PARITY_SENTENCES)), strict=True):
        assert np.abs(ref - got).max() < FP16_TOLERANCE
    assert len(gpu.predict_batch(list(PARITY_SENTENCES) * 20)) == 20 * len(PARITY_SENTENCES)
    gpu.close()


def test_auto_prefers_a_gpu_backend(tiny_model_dir: Path) -> None:
    md = ModelDir(tiny_model_dir)
    assert resolve_backend(ModelSettings(dir=tiny_model_dir), md) in {"tensorrt", "torch"}
    clf = load_classifier(ModelSettings(dir=tiny_model_dir))
    assert clf.backend in {"tensorrt-fp16", "torch-cuda-fp16"}
    clf.close()


@needs_tensorrt
def test_tensorrt_engine_matches_and_is_cached(tiny_model_dir: Path, tmp_path: Path) -> None:
    from models.tensorrt_backend import TensorRTClassifier, build_engine

    md = ModelDir(tiny_model_dir)
    settings = ModelSettings(dir=tiny_model_dir, engine_dir=tmp_path, trt_max_batch=16, trt_max_length=64)
    path = build_engine(md, settings)
    assert md.model_version in path.name and path.exists()
    mtime = path.stat().st_mtime_ns
    assert build_engine(md, settings) == path and path.stat().st_mtime_ns == mtime  # cache hit
    clf = TensorRTClassifier(md, max_length=64, best_batch_size=4, settings=settings)
    for ref, got in zip(_reference(md), clf.logits(list(PARITY_SENTENCES)), strict=True):
        assert np.abs(ref - got).max() < FP16_TOLERANCE
    preds = clf.predict_batch(list(PARITY_SENTENCES) * 5)  # 40 texts -> length-sorted sub-batches of 4
    assert [p.sentiment for p in preds[:8]] == [p.sentiment for p in preds[8:16]]
    clf.close()
