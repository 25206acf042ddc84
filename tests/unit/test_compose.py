"""docker-compose.yml cannot run here (no Docker engine): validate it against the Compose spec."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

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


def test_secrets_have_no_fallback_values() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    secrets = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|TOKEN)[A-Z_]*)(:?[-?])?[^}]*\}", text)
    assert secrets
    allowed_empty = {"GRAFANA_TOKEN"}  # optional: annotations are off without it
    for name, operator in secrets:
        assert operator == ":?" or name in allowed_empty, f"${{{name}}} has a fallback value"


def test_prometheus_is_pinned_and_scrapes_every_process_on_its_ops_port(compose: dict) -> None:
    from dashboards.prometheus import CONTAINER_RULES_DIR, JOBS, RULES_FILE, compose_scrape_config

    services = compose["services"]
    prometheus = services["prometheus"]
    image, tag = prometheus["image"].split(":")
    assert image == "prom/prometheus" and re.fullmatch(r"v\d+\.\d+\.\d+", tag)
    assert f"./dashboards/prometheus:{CONTAINER_RULES_DIR}:ro" in prometheus["volumes"]
    assert (ROOT / "dashboards" / "prometheus" / RULES_FILE).exists()
    jobs = {job["job_name"]: job for job in compose_scrape_config()["scrape_configs"]}
    assert set(jobs) == set(JOBS.values())
    (stream,) = jobs[JOBS["stream"]]["dns_sd_configs"]
    assert services["stream"]["environment"]["FINPULSE_STREAM_OPS_PORT"] == str(stream["port"])
    (alerts_target,) = jobs[JOBS["alerts"]]["static_configs"][0]["targets"]
    assert alerts_target == f"alerts:{services['alerts']['environment']['FINPULSE_ALERTS_OPS_PORT']}"
    (ingest_target,) = jobs[JOBS["ingest"]]["static_configs"][0]["targets"]
    assert ingest_target == "ingest-http:8080" and "8080" in services["ingest-http"]["command"]


def test_each_role_runs_its_own_image_target(compose: dict) -> None:
    targets = set(re.findall(r"^FROM \S+ AS (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    expected = {"ingest-http": "ingest", "alerts": "alerts", "migrate": "alerts", "stream": "stream",
                "model-init": "stream", "stream-gpu": "stream-gpu"}  # fmt: skip
    for service, target in expected.items():
        assert compose["services"][service]["build"]["target"] == target, service
        assert target in targets


def test_grafana_reads_with_the_read_only_user(compose: dict) -> None:
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["FINPULSE_CLICKHOUSE_USER"] == "finpulse_reader"
    users = ElementTree.parse(ROOT / "deploy" / "clickhouse" / "users.d" / "finpulse.xml").getroot()
    reader = users.find("users/finpulse_reader")
    assert [q.text for q in reader.findall("grants/query")] == ["GRANT SELECT ON finpulse.*"]
    assert users.find(f"profiles/{reader.findtext('profile')}/readonly").text in ("1", "2")
    for user in users.find("users"):
        password = user.find("password")
        assert password.get("from_env") and not (password.text or "").strip(), user.tag
    (writer_grant,) = [q.text for q in users.findall("users/finpulse/grants/query")]
    assert writer_grant.endswith("ON finpulse.*") and "ALL" not in writer_grant
    clickhouse = compose["services"]["clickhouse"]
    assert (
        "./deploy/clickhouse/users.d/finpulse.xml:/etc/clickhouse-server/users.d/finpulse.xml:ro"
        in (clickhouse["volumes"])
    )
    assert {"FINPULSE_WRITER_PASSWORD", "FINPULSE_READER_PASSWORD"} <= set(clickhouse["environment"])


def test_production_images_leave_the_development_packages_out() -> None:
    copied = set(re.findall(r"^COPY (\S+) \1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert {"ingest", "stream_app", "models", "storage", "alerts", "dashboards", "finpulse"} <= copied
    assert not copied & {"devstack", "bench", "tests"}
