"""Shared fixtures: one Tansu broker and one ClickHouse server per test session.

An integration test whose component cannot start fails (pytest.fail), it never skips.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devstack.services import LocalClickHouseServer, ServiceError, TansuBroker
from storage.client import ClickHouseClient, connect
from storage.migrate import migrate
from storage.settings import ClickHouseSettings

REAL_SERVICE_FIXTURES = {"broker", "clickhouse_server"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by folder and by need: `pytest -m "not integration"` is the fast suite.

    Tests under tests/integration, and any test that starts the real broker or ClickHouse server,
    are `integration`; tests under tests/gpu are `gpu`.
    """
    for item in items:
        parts = item.path.parts
        if "integration" in parts or REAL_SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
        if "gpu" in parts:
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClickHouseServer]:
    server = LocalClickHouseServer(tmp_path_factory.mktemp("clickhouse"))
    try:
        server.start()
    except ServiceError as exc:
        pytest.fail(f"ClickHouse server did not start: {exc}")
    yield server
    server.remove()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    tansu = TansuBroker(log_path=tmp_path_factory.mktemp("tansu") / "broker.log")
    try:
        tansu.start()
    except ServiceError as exc:
        pytest.fail(f"Tansu broker did not start: {exc}")
    yield tansu
    tansu.stop()


@pytest.fixture
def clickhouse_settings(clickhouse_server: LocalClickHouseServer) -> ClickHouseSettings:
    """Settings for a fresh, migrated database on the session's server."""
    settings = ClickHouseSettings(
        mode="server",
        port=clickhouse_server.tcp_port,
        database=f"t_{uuid.uuid4().hex[:10]}",
        insert_backoff_s=0.05,
    )
    client = connect(settings)
    migrate(client)
    client.close()
    return settings


@pytest.fixture
def ch_client(clickhouse_settings: ClickHouseSettings) -> Iterator[ClickHouseClient]:
    client = connect(clickhouse_settings)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny two-head model trained in seconds (the stage tests need a real model, not a fake)."""
    from models.training import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
