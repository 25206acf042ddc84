"""ONNX export with a parity gate, and optional dynamic INT8 quantisation with its measured accuracy loss.

``model.onnx`` is the plain opset-17 export (standard ops only, so TensorRT can parse it).
``model.int8.onnx`` is ORT's transformer-fused graph quantised dynamically (MatMul weights int8 with
per-channel scales); it is served by default only when its accuracy loss on the held-out split is under
one point.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.datasets import Record
from models.modeldir import ModelDir, load_torch_model
from models.samples import PARITY_SENTENCES
from models.sub_batching import load_tokenizer, pad_batch

PARITY_TOLERANCE = 1e-4
OPSET = 17


class ParityError(RuntimeError):
    """The exported graph does not reproduce the torch logits within tolerance."""


def _max_abs_diff(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> float:
    return float(max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)))


def parity(model_dir: ModelDir, variant: str, sentences: Sequence[str] = PARITY_SENTENCES) -> float:
    """Max abs logit difference (both heads) between ONNX Runtime and torch fp32 on fixed sentences.

    Run twice, as one padded batch and as length-sorted sub-batches of 3, so padding is covered.
    """
    from models.onnx_backend import OnnxClassifier
    from models.torch_backend import TorchClassifier

    max_length = int(model_dir.meta.get("max_length", 128))
    worst = 0.0
    for best in (len(sentences), 3):
        ref = TorchClassifier(model_dir, max_length, best, device="cpu")
        ort = OnnxClassifier(model_dir, max_length, best, variant=variant)
        worst = max(worst, _max_abs_diff(ref.logits(sentences), ort.logits(sentences)))
        ref.close()
        ort.close()
    return worst


def export_onnx(model_dir: ModelDir, tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Export ``model.onnx`` (dynamic batch and sequence axes); raise ParityError (and delete it) when off."""
    import torch

    model = load_torch_model(model_dir)
    tokenizer = load_tokenizer(model_dir, 16)
    encoded = [e.ids for e in tokenizer.encode_batch(list(PARITY_SENTENCES[:2]))]
    ids, mask = (torch.from_numpy(a) for a in pad_batch(encoded, model_dir.pad_id))
    path = model_dir.onnx_path("fp32")
    with warnings.catch_warnings():
        # dynamo=False is deliberate (TorchScript exporter: dynamic_axes, fusable eager attention)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentiment_logits", "topic_logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "sentiment_logits": {0: "batch"},
                "topic_logits": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    diff = parity(model_dir, "fp32")
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise ParityError(
            f"ONNX fp32 max abs logit diff {diff:.3g} > tolerance {tolerance:g}; export removed"
        )
    record = {
        "opset": OPSET,
        "parity_max_abs_diff": diff,
        "parity_tolerance": tolerance,
        "parity_sentences": len(PARITY_SENTENCES),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    onnx_meta = model_dir.meta.get("onnx", {})
    onnx_meta.pop("int8", None)
    model_dir.onnx_path("int8").unlink(missing_ok=True)
    model_dir.update_meta(onnx={**onnx_meta, "fp32": record})
    return record


def quantize_int8(
    model_dir: ModelDir, records: Sequence[Record], split_name: str = "test", max_length: int = 128
) -> dict[str, Any]:
    """Fuse + dynamically quantise model.onnx to model.int8.onnx; record its accuracy loss on ``records``.

    ``max_length`` should be the serving truncation length (``ModelSettings.max_length``).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from models.evaluation import evaluate_classifier, summary
    from models.onnx_backend import OnnxClassifier

    src = model_dir.onnx_path("fp32")
    dst = model_dir.onnx_path("int8")
    config = load_config(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "fused.onnx"
        optimize_model(
            str(src), model_type="bert", num_heads=config["heads"], hidden_size=config["hidden"], opt_level=0
        ).save_model_to_file(str(fused))
        quantize_dynamic(
            str(fused),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,  # per-tensor scales cost this model >1 point of topic accuracy
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    scores = {}
    for variant in ("fp32", "int8"):
        clf = OnnxClassifier(model_dir, max_length, 64, variant=variant)
        scores[variant] = summary(evaluate_classifier(clf, records))
        clf.close()
    deltas = {k: round(100 * (scores["fp32"][k] - scores["int8"][k]), 2) for k in scores["fp32"]}
    loss = max([0.0] + [v for k, v in deltas.items() if k in ("sentiment_accuracy", "topic_accuracy")])
    record = {
        "split": split_name,
        "n": len(records),
        "fp32": scores["fp32"],
        "int8": scores["int8"],
        "delta_points": deltas,
        "accuracy_loss_points": loss,
        "parity_max_abs_diff": parity(model_dir, "int8"),
        "quantized_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    model_dir.update_meta(onnx={**model_dir.meta.get("onnx", {}), "int8": record})
    return record


def load_config(model_dir: ModelDir) -> dict[str, int]:
    """Attention heads and hidden size of the encoder (for ORT's fusion pass)."""
    import json

    cfg = json.loads((model_dir.path / "config.json").read_text())
    return {"heads": int(cfg["num_attention_heads"]), "hidden": int(cfg["hidden_size"])}
