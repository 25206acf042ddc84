"""torch backend: CPU fp32, or CUDA with fp16 weights/activations."""

from __future__ import annotations

import numpy as np
import torch

from models.modeldir import ModelDir, load_torch_model
from models.sub_batching import GPU_CALL_OVERHEAD_TOKENS, BatchedClassifier


class TorchClassifier(BatchedClassifier):
    """Runs the two-head torch model; ``backend`` is ``torch-cpu``, ``torch-cuda`` or ``torch-cuda-fp16``."""

    def __init__(
        self,
        model_dir: ModelDir,
        max_length: int,
        best_batch_size: int,
        sentiment_prior: str | None = None,
        device: str = "cpu",
        fp16: bool = True,
        threads: int | None = None,
    ) -> None:
        super().__init__(model_dir, max_length, best_batch_size, sentiment_prior)
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        model = load_torch_model(model_dir).to(self.device)
        self.fp16 = fp16 and self.device.type == "cuda"
        if self.fp16:
            model = model.half()
        self.model = model
        self.backend = f"torch-{self.device.type}" + ("-fp16" if self.fp16 else "")
        if self.device.type == "cuda":
            self.call_overhead_tokens = GPU_CALL_OVERHEAD_TOKENS

    @torch.inference_mode()
    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
        mask = torch.from_numpy(attention_mask).to(self.device, non_blocking=True)
        sent, topic = self.model(ids, mask)
        return sent.float().cpu().numpy(), topic.float().cpu().numpy()

    def close(self) -> None:
        """Drop the model and free cached CUDA memory."""
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
