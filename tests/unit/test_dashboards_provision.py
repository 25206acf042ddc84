"""`finpulse grafana provision` against a fake of grafana-client's GrafanaApi (no Grafana here)."""

from __future__ import annotations

from grafana_client.client import GrafanaClientError
from pydantic import SecretStr

from dashboards.model import DATASOURCE_UID
from dashboards.provision import provision
from dashboards.settings import GrafanaSettings


class _Element:
    def __init__(self, api: FakeGrafana, existing: set[str]) -> None:
        self._api, self._existing = api, existing

    def _missing(self, uid: str) -> None:
        if uid not in self._existing:
            raise GrafanaClientError(404, {"message": "not found"}, "Client Error 404: not found")


class _Datasources(_Element):
    def get_datasource_by_uid(self, *, datasource_uid: str) -> dict:
        self._missing(datasource_uid)
        return {"uid": datasource_uid}

    def create_datasource(self, *, datasource: dict) -> dict:
        self._api.calls.append(("create_datasource", datasource))
        return {}

    def update_datasource_by_uid(self, *, datasource_uid: str, datasource: dict) -> dict:
        self._api.calls.append(("update_datasource", datasource))
        return {}


class _Folders(_Element):
    def get_folder(self, *, uid: str) -> dict:
        self._missing(uid)
        return {"uid": uid}

    def create_folder(self, *, title: str, uid: str) -> dict:
        self._api.calls.append(("create_folder", {"title": title, "uid": uid}))
        return {}


class _Dashboards(_Element):
    def update_dashboard(self, *, dashboard: dict) -> dict:
        self._api.calls.append(("update_dashboard", dashboard))
        return {"url": f"/d/{dashboard['dashboard']['uid']}/x"}


class FakeGrafana:
    """Records calls; `existing` uids answer 200, others 404, like Grafana."""

    def __init__(self, existing: set[str]) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.datasource = _Datasources(self, existing)
        self.folder = _Folders(self, existing)
        self.dashboard = _Dashboards(self, existing)


SETTINGS = GrafanaSettings(
    url="http://grafana:3000/", token=SecretStr("t"), clickhouse_password=SecretStr("pw")
)


def test_fresh_grafana_gets_datasource_folder_and_dashboards() -> None:
    api = FakeGrafana(existing=set())
    urls = provision(api, SETTINGS)
    assert urls == ["http://grafana:3000/d/finpulse-market/x", "http://grafana:3000/d/finpulse-pipeline/x"]
    kinds = [name for name, _ in api.calls]
    assert kinds == ["create_datasource", "create_folder", "update_dashboard", "update_dashboard"]
    source = api.calls[0][1]
    assert source["uid"] == DATASOURCE_UID and source["secureJsonData"] == {"password": "pw"}
    assert source["jsonData"]["host"] == "clickhouse" and source["jsonData"]["port"] == 9000
    pushed = api.calls[2][1]
    assert pushed["overwrite"] and pushed["folderUid"] == "finpulse"


def test_existing_datasource_and_folder_are_updated_not_duplicated() -> None:
    api = FakeGrafana(existing={DATASOURCE_UID, "finpulse"})
    provision(api, SETTINGS)
    assert [name for name, _ in api.calls] == ["update_datasource", "update_dashboard", "update_dashboard"]
