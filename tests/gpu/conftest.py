"""GPU fixtures: skip everything here with a reason when there is no CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime import cuda_available
from models.samples import SMOKE_RECORDS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine (torch.cuda.is_available() is False)")
    for item in items:
        if "tests/gpu" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test model with model.onnx exported (same recipe as tests/unit)."""
    from models.export import export_onnx
    from models.modeldir import ModelDir
    from models.training import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-model"), records=list(SMOKE_RECORDS))
    export_onnx(ModelDir(path))
    return path
