"""Settings of the model stage (env prefix ``FINPULSE_MODEL_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelSettings(BaseSettings):
    """Where the model directory lives and how to serve it."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_MODEL_", extra="ignore")

    dir: Path = Path("var/model")
    backend: Literal["auto", "tensorrt", "torch", "onnx"] = "auto"
    # auto = int8 when model.int8.onnx exists and its recorded accuracy loss is under one point.
    onnx_variant: Literal["auto", "fp32", "int8"] = "auto"
    max_length: int = Field(128, ge=8, le=512)
    best_batch_size: int = Field(32, ge=1)
    intra_op_threads: int | None = Field(None, ge=1)
    # Class-prior adjustment for a stream whose label mix differs from training, e.g.
    # "negative=0.15,neutral=0.65,positive=0.20" (see models/calibration.py); unset = off.
    sentiment_prior: str | None = None
    # torch backend: auto = CUDA when available, else CPU; fp16 applies on CUDA only.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cuda_fp16: bool = True
    # TensorRT engines: cache folder (default <dir>/engines) and the profile's upper bounds.
    engine_dir: Path | None = None
    trt_max_batch: int = Field(128, ge=1)
    trt_max_length: int = Field(128, ge=8, le=512)
