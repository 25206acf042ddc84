"""TensorRT backend (TensorRT 10+ tensor-address API) and the engine builder.

``tensorrt`` is imported lazily: this module is only imported when the backend is chosen or an
engine is built. Device and pinned host buffers are torch tensors (torch ships on every GPU host
here; TensorRT itself has no allocator in its Python API).

Engines are cached as ``<engine_dir>/<model_version>-<gpu>-trt<version>-b<max batch>-l<max len>.plan``
so a new model, another GPU model or another TensorRT version never loads a stale engine.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from models.modeldir import ModelDir
from models.settings import ModelSettings
from models.sub_batching import GPU_CALL_OVERHEAD_TOKENS, BatchedClassifier

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("sentiment_logits", "topic_logits")


def engine_path(model_dir: ModelDir, settings: ModelSettings) -> Path:
    """Cache path of the engine for this model, GPU, TensorRT version and profile bounds."""
    import tensorrt as trt
    import torch

    gpu = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name()).strip("-").lower()
    folder = settings.engine_dir or model_dir.path / "engines"
    bounds = f"b{settings.trt_max_batch}-l{settings.trt_max_length}"
    return Path(folder) / f"{model_dir.model_version}-{gpu}-trt{trt.__version__}-{bounds}.plan"


def build_engine(model_dir: ModelDir, settings: ModelSettings, force: bool = False) -> Path:
    """Parse model.onnx and build an FP16 engine with one profile over batch x sequence length.

    Profile: min (1, 1), opt (best_batch_size, 64), max (trt_max_batch, trt_max_length).
    Returns the cached engine when present (unless ``force``).
    """
    import tensorrt as trt

    path = engine_path(model_dir, settings)
    if path.exists() and not force:
        return path
    onnx_file = model_dir.onnx_path("fp32")
    if not onnx_file.exists():
        raise FileNotFoundError(f"{onnx_file} not found; run `finpulse model export` first")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_file}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 2 << 30)
    config.set_flag(trt.BuilderFlag.FP16)  # weak typing: TensorRT may pick fp16 kernels per layer
    profile = builder.create_optimization_profile()
    max_b, max_l = settings.trt_max_batch, settings.trt_max_length
    opt = (min(settings.best_batch_size, max_b), min(64, max_l))
    for name in INPUTS:
        profile.set_shape(name, (1, 1), opt, (max_b, max_l))
    config.add_optimization_profile(profile)
    log.info("building TensorRT engine for %s (fp16, batch<=%d, length<=%d)", onnx_file, max_b, max_l)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(path)
    return path


class TensorRTClassifier(BatchedClassifier):
    """Runs a cached (or freshly built) FP16 engine on a CUDA stream with pinned host staging buffers."""

    backend = "tensorrt-fp16"
    call_overhead_tokens = GPU_CALL_OVERHEAD_TOKENS

    def __init__(
        self, model_dir: ModelDir, max_length: int, best_batch_size: int, settings: ModelSettings
    ) -> None:
        import tensorrt as trt
        import torch

        if max_length > settings.trt_max_length:
            raise ValueError(
                f"max_length {max_length} exceeds the engine profile's {settings.trt_max_length}"
            )
        super().__init__(
            model_dir, max_length, min(best_batch_size, settings.trt_max_batch), settings.sentiment_prior
        )
        self._torch = torch
        self._max_batch = settings.trt_max_batch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(build_engine(model_dir, settings).read_bytes())
        if self._engine is None:
            raise RuntimeError("could not deserialize the TensorRT engine; rebuild it with --force")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        cap = self._max_batch * settings.trt_max_length
        self._dev: dict[str, Any] = {}
        self._host: dict[str, Any] = {}
        for name in INPUTS:
            dtype = _torch_dtype(trt, self._engine.get_tensor_dtype(name))
            self._dev[name] = torch.empty(cap, dtype=dtype, device="cuda")
            self._host[name] = torch.empty(cap, dtype=dtype, pin_memory=True)
        widths = {"sentiment_logits": len(self.sentiments), "topic_logits": len(self.topics)}
        for name in OUTPUTS:
            dtype = _torch_dtype(trt, self._engine.get_tensor_dtype(name))
            self._dev[name] = torch.empty(self._max_batch * widths[name], dtype=dtype, device="cuda")
            self._host[name] = torch.empty(self._max_batch * widths[name], dtype=dtype, pin_memory=True)
        self._widths = widths

    def _infer(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch, length = input_ids.shape
        if batch > self._max_batch:
            raise ValueError(f"sub-batch {batch} exceeds the engine profile's max batch {self._max_batch}")
        n = batch * length
        ctx = self._context
        with self._torch.cuda.stream(self._stream):
            for name, array in zip(INPUTS, (input_ids, attention_mask), strict=True):
                host = self._host[name][:n]
                host.copy_(self._torch.from_numpy(array.reshape(-1)))  # int64 -> engine dtype if narrower
                self._dev[name][:n].copy_(host, non_blocking=True)
                ctx.set_input_shape(name, (batch, length))
                ctx.set_tensor_address(name, self._dev[name].data_ptr())
            for name in OUTPUTS:
                ctx.set_tensor_address(name, self._dev[name].data_ptr())
            if not ctx.execute_async_v3(stream_handle=self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            outs = []
            for name in OUTPUTS:
                m = batch * self._widths[name]
                self._host[name][:m].copy_(self._dev[name][:m], non_blocking=True)
                outs.append(self._host[name][:m])
        self._stream.synchronize()
        return tuple(  # type: ignore[return-value]
            o.float().numpy().reshape(batch, self._widths[name]).copy()
            for o, name in zip(outs, OUTPUTS, strict=True)
        )

    def close(self) -> None:
        """Free the context, engine and CUDA buffers."""
        self._context = None
        self._engine = None
        self._dev.clear()
        self._host.clear()
        self._torch.cuda.empty_cache()


def _torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch

    table = {
        trt.DataType.INT64: torch.int64,
        trt.DataType.INT32: torch.int32,
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
    }
    if dtype not in table:
        raise TypeError(f"unsupported TensorRT I/O dtype {dtype}")
    return table[dtype]
