"""Push the data source and dashboards to an existing Grafana through its HTTP API (grafana-client)."""

from __future__ import annotations

from typing import Any

from dashboards.generate import dashboards, datasource
from dashboards.model import DATASOURCE_UID
from dashboards.settings import GrafanaSettings


def provision(api: Any, settings: GrafanaSettings) -> list[str]:
    """Create or update the ClickHouse data source, the folder and every dashboard; return dashboard URLs.

    `api` is a `grafana_client.GrafanaApi`; calls use keyword arguments (grafana-client reordered some).
    """
    from grafana_client.client import GrafanaClientError

    source = datasource(
        settings.clickhouse_host,
        settings.clickhouse_port,
        settings.clickhouse_user,
        settings.clickhouse_password.get_secret_value(),
        settings.database,
    )
    try:
        api.datasource.get_datasource_by_uid(datasource_uid=DATASOURCE_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.datasource.create_datasource(datasource=source)
    else:
        api.datasource.update_datasource_by_uid(datasource_uid=DATASOURCE_UID, datasource=source)

    folder_uid = settings.folder.lower().replace(" ", "-")
    try:
        api.folder.get_folder(uid=folder_uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(title=settings.folder, uid=folder_uid)

    urls = []
    for model in dashboards(settings.database).values():
        reply = api.dashboard.update_dashboard(
            dashboard={"dashboard": model, "folderUid": folder_uid, "overwrite": True, "message": "finpulse"}
        )
        urls.append(settings.url.rstrip("/") + reply.get("url", f"/d/{model['uid']}"))
    return urls
