"""The `finpulse` command: one entry point, a sub-command per stage.

Each sub-command is a composition root: it reads its settings from the environment
(FINPULSE_*), builds the clients it needs and hands each component only its own settings.
"""

from __future__ import annotations

import logging

import typer

from alerts.backtest_cli import backtest_command
from alerts.cli import app as alerts_app
from dashboards.cli import app as grafana_app
from finpulse.demo import demo_command
from finpulse.replay import replay_command
from ingest.cli import app as ingest_app
from models.classify_cli import classify as classify_command
from models.cli import app as model_app

OUR_PACKAGES = (
    "finpulse",
    "devstack",
    "ingest",
    "stream_app",
    "models",
    "storage",
    "alerts",
    "dashboards",
    "bench",
)

app = typer.Typer(help="finpulse: streaming financial sentiment monitor.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(model_app, name="model")
app.add_typer(alerts_app, name="alerts")
app.add_typer(grafana_app, name="grafana")
db_app = typer.Typer(help="ClickHouse schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("classify")(classify_command)
app.command("demo")(demo_command)
app.command("replay")(replay_command)
app.command("backtest")(backtest_command)


def _mount_development_tools() -> None:
    # `bench/` and `devstack/` are development packages: production images leave them out, and the
    # product's commands must not need them.
    try:
        from bench.cli import app as bench_app
    except ModuleNotFoundError:
        return
    app.add_typer(bench_app, name="bench")


_mount_development_tools()


@app.callback()
def _logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    # Our packages log at INFO; libraries only warnings (some, like ONNX Runtime's quantiser, log
    # hundreds of INFO lines on the root logger), unless --verbose.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for ours in OUR_PACKAGES:
            logging.getLogger(ours).setLevel(logging.INFO)


@app.command("stream")
def stream_command() -> None:
    """Run a stream worker: Kafka -> model -> ClickHouse (settings from FINPULSE_* variables)."""
    from ingest.topics import KafkaSettings
    from models.settings import ModelSettings
    from storage.settings import ClickHouseSettings
    from stream_app.main import run_worker
    from stream_app.settings import StreamSettings

    run_worker(StreamSettings(), KafkaSettings(), ClickHouseSettings(), ModelSettings())


@db_app.command("migrate")
def migrate_command() -> None:
    """Create the database and apply pending schema migrations."""
    from storage.client import connect
    from storage.migrate import migrate
    from storage.settings import ClickHouseSettings

    settings = ClickHouseSettings()
    client = connect(settings)
    try:
        applied = migrate(client, settings.retention_days)
    finally:
        client.close()
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in applied) or "none (up to date)"
    typer.echo(f"database {settings.database}: applied {names}")


def main() -> None:
    """Console-script entry point."""
    app()
