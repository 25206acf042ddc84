"""docker-compose.yml cannot run here (no Docker engine): validate it against the Compose spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    # YAML anchors and merge keys are resolved first, as docker compose does.
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_spec(compose: dict) -> None:
    parsed = PyCompose.from_yaml(yaml.safe_dump(compose))
    parsed.validate()
    assert set(parsed.service_names()) >= {
        "kafka",
        "clickhouse",
        "grafana",
        "stream",
        "alerts",
        "ingest-http",
    }


def test_spec_check_rejects_mistakes() -> None:
    with pytest.raises(ValueError):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    portz: ['80:80']\n")
    with pytest.raises(ValueError):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    ports: 12\n")


def test_dependencies_and_mounts_exist(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing path {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def test_gpu_profile_reserves_a_gpu_for_the_stream_worker(compose: dict) -> None:
    gpu = compose["services"]["stream-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"] == ["stream"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_grafana_is_pinned_to_the_schema_version_used_by_the_type_check(compose: dict) -> None:
    package = json.loads((ROOT / "dashboards" / "typecheck" / "package.json").read_text())
    schema_version = package["devDependencies"]["@grafana/schema"]
    grafana = compose["services"]["grafana"]
    assert grafana["image"] == f"grafana/grafana:{schema_version}"
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    mounts = {v.split(":")[1] for v in grafana["volumes"]}
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} <= mounts
