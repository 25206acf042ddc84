"""Choose and load a backend for a model directory: ``load_classifier(settings) -> Classifier``.

``auto`` order: TensorRT (``tensorrt`` imports and a CUDA GPU is present) -> torch CUDA fp16 ->
ONNX Runtime on CPU (int8 when offered) -> torch on CPU.
"""

from __future__ import annotations

import glob
import importlib.util
import logging

from models.base import Classifier
from models.modeldir import ModelDir
from models.settings import ModelSettings

log = logging.getLogger(__name__)

INT8_MAX_LOSS_POINTS = 1.0


def cuda_available() -> bool:
    """True when a CUDA device is usable from torch (torch is imported only if NVIDIA devices exist)."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return False
    import torch

    return torch.cuda.is_available()


def tensorrt_importable() -> bool:
    """True when the ``tensorrt`` Python package is installed (without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None


def int8_offered(model_dir: ModelDir) -> bool:
    """True when model.int8.onnx exists and its recorded accuracy loss is under one point."""
    record = model_dir.meta.get("onnx", {}).get("int8")
    return bool(
        model_dir.onnx_path("int8").exists()
        and record
        and record.get("accuracy_loss_points", float("inf")) < INT8_MAX_LOSS_POINTS
    )


def onnx_variant(settings: ModelSettings, model_dir: ModelDir) -> str:
    """The ONNX file to serve: the configured one, or int8 when offered, else fp32."""
    if settings.onnx_variant != "auto":
        return settings.onnx_variant
    return "int8" if int8_offered(model_dir) else "fp32"


def resolve_backend(settings: ModelSettings, model_dir: ModelDir) -> str:
    """The concrete backend (tensorrt | torch | onnx) that ``auto`` picks on this machine."""
    if settings.backend != "auto":
        return settings.backend
    has_onnx = model_dir.onnx_path("fp32").exists()
    if settings.device != "cpu" and cuda_available():
        if tensorrt_importable() and has_onnx:
            return "tensorrt"
        return "torch"
    if has_onnx or model_dir.onnx_path("int8").exists():
        return "onnx"
    return "torch"


def load_classifier(settings: ModelSettings) -> Classifier:
    """Load the model directory in ``settings.dir`` with the configured (or best available) backend."""
    model_dir = ModelDir(settings.dir)
    backend = resolve_backend(settings, model_dir)
    common = {"max_length": settings.max_length, "best_batch_size": settings.best_batch_size}
    prior = {"sentiment_prior": settings.sentiment_prior}
    if backend == "tensorrt":
        from models.tensorrt_backend import TensorRTClassifier

        clf: Classifier = TensorRTClassifier(model_dir, settings=settings, **common)
    elif backend == "onnx":
        from models.onnx_backend import OnnxClassifier

        variant = onnx_variant(settings, model_dir)
        clf = OnnxClassifier(model_dir, variant=variant, threads=settings.intra_op_threads, **common, **prior)
    else:
        from models.torch_backend import TorchClassifier

        device = settings.device
        if device == "auto":
            device = "cuda" if cuda_available() else "cpu"
        clf = TorchClassifier(
            model_dir,
            device=device,
            fp16=settings.cuda_fp16,
            threads=settings.intra_op_threads,
            **common,
            **prior,
        )
    log.info("model %s loaded from %s on backend %s", clf.model_version, settings.dir, clf.backend)
    return clf
