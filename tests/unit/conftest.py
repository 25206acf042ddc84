"""Shared unit-test fixtures: the tiny classifier model, built once per session (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.samples import SMOKE_RECORDS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model directory (2-layer BERT, hidden 32, MiniLM vocab) with model.onnx exported.

    Trained on the built-in smoke records so it does not depend on the corpus; accuracy is meaningless.
    """
    from models.export import export_onnx
    from models.modeldir import ModelDir
    from models.training import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-model"), records=list(SMOKE_RECORDS))
    export_onnx(ModelDir(path))
    return path
