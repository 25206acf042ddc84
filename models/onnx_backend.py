"""ONNX Runtime backend (CPU): fp32 ``model.onnx`` or dynamic-int8 ``model.int8.onnx``."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from models.modeldir import ModelDir
from models.sub_batching import BatchedClassifier


class OnnxClassifier(BatchedClassifier):
    """Runs an exported ONNX file with ONNX Runtime; ``backend`` is ``onnx-fp32`` or ``onnx-int8``."""

    def __init__(
        self,
        model_dir: ModelDir,
        max_length: int,
        best_batch_size: int,
        sentiment_prior: str | None = None,
        variant: str = "fp32",
        threads: int | None = None,
    ) -> None:
        super().__init__(model_dir, max_length, best_batch_size, sentiment_prior)
        path = model_dir.onnx_path(variant)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found; run `finpulse model export`")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session: ort.InferenceSession | None = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.variant = variant
        self.backend = f"onnx-{variant}"

    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.session is not None, "classifier is closed"
        sent, topic = self.session.run(
            ["sentiment_logits", "topic_logits"], {"input_ids": input_ids, "attention_mask": attention_mask}
        )
        return sent, topic

    def close(self) -> None:
        """Drop the inference session."""
        self.session = None
