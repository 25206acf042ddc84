"""`finpulse grafana ...`: build the dashboard files, or push them to a running Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Grafana dashboards as code.", no_args_is_help=True)


@app.command()
def build(
    out: Annotated[Path | None, typer.Option(help="Root to write json/ and provisioning/ under.")] = None,
    database: Annotated[str, typer.Option(help="ClickHouse database the panels query.")] = "finpulse",
) -> None:
    """Write dashboards/json/*.json and the provisioning YAML from the Python definitions."""
    from dashboards.generate import PACKAGE_DIR, build_files

    for path in build_files(out or PACKAGE_DIR, database):
        typer.echo(str(path))


@app.command()
def provision(
    url: Annotated[str | None, typer.Option(help="Grafana base URL (default FINPULSE_GRAFANA_URL).")] = None,
    token: Annotated[
        str | None, typer.Option(help="Service-account token (default FINPULSE_GRAFANA_TOKEN).")
    ] = None,
) -> None:
    """Create/update the ClickHouse data source and the dashboards in an existing Grafana."""
    from grafana_client import GrafanaApi

    from dashboards.provision import provision as push
    from dashboards.settings import GrafanaSettings

    settings = GrafanaSettings()
    update = {key: value for key, value in {"url": url, "token": token}.items() if value is not None}
    settings = GrafanaSettings.model_validate({**settings.model_dump(), **update})
    if not settings.token.get_secret_value():
        raise typer.BadParameter("a token is required (--token or FINPULSE_GRAFANA_TOKEN)")
    api = GrafanaApi.from_url(url=settings.url, credential=settings.token.get_secret_value(),
                              timeout=settings.timeout_s)  # fmt: skip
    for dashboard_url in push(api, settings):
        typer.echo(dashboard_url)


if __name__ == "__main__":
    app()
