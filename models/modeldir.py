"""The self-contained model directory: encoder config + weights, tokenizer, label maps, metadata.

Layout::

    config.json            encoder config (transformers)
    model.safetensors      encoder.* + sentiment_head.* + topic_head.* weights
    tokenizer.json ...     fast tokenizer files
    labels.json            {"sentiment": [...], "topic": [...]}
    finpulse_model.json    model_version, base model, pooling, pad id, training, metrics, exports
    model.onnx             optional fp32 export
    model.int8.onnx        optional dynamic int8 quantisation
    engines/               optional TensorRT engines (per model hash + GPU + TensorRT version)

``model_version`` is a content hash of the weights and the label maps, so the same weights always
carry the same version and any retraining changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.base import SENTIMENTS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from models.network import TwoHeadModel

WEIGHTS = "model.safetensors"
LABELS = "labels.json"
META = "finpulse_model.json"
TOKENIZER = "tokenizer.json"
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"


class ModelDirError(FileNotFoundError):
    """The folder is not a complete finpulse model directory."""


@dataclass
class ModelDir:
    """A finpulse model directory on disk (read lazily)."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        missing = [
            n for n in ("config.json", WEIGHTS, TOKENIZER, LABELS, META) if not (self.path / n).exists()
        ]
        if missing:
            raise ModelDirError(
                f"{self.path} is not a finpulse model directory (missing {', '.join(missing)}); "
                "train one with `finpulse model train`"
            )

    @cached_property
    def meta(self) -> dict[str, Any]:
        """The parsed finpulse_model.json."""
        return json.loads((self.path / META).read_text())

    @cached_property
    def labels(self) -> dict[str, list[str]]:
        """Label maps: index -> name for the 'sentiment' and 'topic' heads."""
        return json.loads((self.path / LABELS).read_text())

    @property
    def model_version(self) -> str:
        """Content hash of weights + labels, recorded at save time."""
        return self.meta["model_version"]

    @property
    def pad_id(self) -> int:
        """Token id used for padding."""
        return int(self.meta["pad_token_id"])

    def onnx_path(self, variant: str) -> Path:
        """Path of the fp32 or int8 ONNX file (may not exist)."""
        return self.path / (ONNX_INT8 if variant == "int8" else ONNX_FP32)

    def update_meta(self, **sections: Any) -> None:
        """Merge top-level sections into finpulse_model.json and rewrite it."""
        meta = {**self.meta, **sections}
        (self.path / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self.__dict__.pop("meta", None)


def content_hash(path: Path) -> str:
    """``fp-`` + the first 16 hex digits of sha256(weights bytes + labels.json bytes)."""
    digest = hashlib.sha256()
    for name in (WEIGHTS, LABELS):
        with open(path / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "fp-" + digest.hexdigest()[:16]


def save_model_dir(
    model: TwoHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    topics: list[str],
    meta: dict[str, Any],
) -> ModelDir:
    """Write a complete model directory (removing stale exports) and return it."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (ONNX_FP32, ONNX_INT8):
        (out / stale).unlink(missing_ok=True)
    model.encoder.config.save_pretrained(out)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    tokenizer.save_pretrained(out)
    if not (out / TOKENIZER).exists():
        raise ModelDirError(f"the base tokenizer has no fast (tokenizer.json) form; cannot serve {out}")
    (out / LABELS).write_text(
        json.dumps({"sentiment": list(SENTIMENTS), "topic": list(topics)}, indent=2) + "\n"
    )
    full_meta = {
        **meta,
        "model_version": content_hash(out),
        "pooling": "mean",
        "pad_token_id": int(tokenizer.pad_token_id or 0),
    }
    (out / META).write_text(json.dumps(full_meta, indent=2, sort_keys=True) + "\n")
    return ModelDir(out)


def load_torch_model(model_dir: ModelDir) -> TwoHeadModel:
    """Rebuild the two-head torch model from a model directory (eval mode, CPU)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from models.network import TwoHeadModel

    config = AutoConfig.from_pretrained(model_dir.path)
    labels = model_dir.labels
    model = TwoHeadModel.from_config(config, len(labels["sentiment"]), len(labels["topic"]))
    model.load_state_dict(load_file(str(model_dir.path / WEIGHTS)))
    return model.eval()
