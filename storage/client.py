"""One small interface over ClickHouse, with a server adapter (clickhouse-driver) and chDB.

Lifecycle: `connect(settings)` -> `query`/`insert`/`command` many times -> `close()`.
Both adapters render parameters the same way (`%(name)s` placeholders, see `render`), so SQL
written once runs on ClickHouse 18.16, current ClickHouse and chDB.
"""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson

from ingest.ops import CheckResult
from storage.settings import ClickHouseSettings

_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"})


class StorageError(RuntimeError):
    """ClickHouse refused or could not be reached.

    `transient` is True when trying again may succeed (connection, timeout, server overload), False
    when the same statement will fail again (the data or the SQL is wrong): a writer splits a
    permanently failing batch to find and dead-letter the offending rows.
    """

    def __init__(self, message: str, transient: bool = True, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


# ClickHouse error codes that the same statement would hit again: bad values, types, SQL or schema.
PERMANENT_CODES = frozenset({
    6, 16, 26, 27, 36, 38, 41, 43, 44, 47, 53, 60, 62, 69, 70, 72, 81, 117, 131, 321, 349, 365,
})  # fmt: skip
# Raised by clickhouse-driver while serialising a row it cannot encode (so never sent).
_ENCODING_ERRORS = (ValueError, TypeError, AttributeError, OverflowError, struct.error)
_CODE = re.compile(r"Code: (\d+)")


def _error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(exc))
    return int(found.group(1)) if found else None


def classify_error(exc: BaseException, prefix: str) -> StorageError:
    """Wrap a driver or chDB exception in a StorageError that says whether a retry may help."""
    code = _error_code(exc)
    permanent = code in PERMANENT_CODES or (code is None and isinstance(exc, _ENCODING_ERRORS))
    return StorageError(f"{prefix}: {_first_lines(exc)}", transient=not permanent, code=code)


def quote(value: Any) -> str:
    """Render one Python value as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return f"'{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, date):
        return f"'{value:%Y-%m-%d}'"
    if isinstance(value, list):
        return "[" + ", ".join(quote(v) for v in value) + "]"
    if isinstance(value, tuple | set | frozenset):  # for IN: old servers reject IN [array]
        return "(" + ", ".join(quote(v) for v in value) + ")"
    return "'" + str(value).translate(_ESCAPES) + "'"


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """Substitute `%(name)s` placeholders with quoted literals."""
    if not params:
        return sql
    return sql % {name: quote(value) for name, value in params.items()}


def _first_lines(exc: BaseException) -> str:
    """Exception text without the server's stack trace."""
    return str(exc).split("Stack trace")[0].strip()


class ClickHouseClient(Protocol):
    """What the stages need from ClickHouse."""

    database: str

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run a SELECT and return rows as tuples."""
        ...

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run DDL or another statement without a result."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (values passed as data, never inlined)."""
        ...

    def server_version(self) -> tuple[int, ...]:
        """Server version as a tuple of ints, e.g. (18, 16, 1)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class ServerClient:
    """clickhouse-driver adapter for a ClickHouse server (thread-safe through a lock)."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        from clickhouse_driver import Client

        self.database = settings.database
        self._lock = threading.Lock()
        self._client = Client(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password.get_secret_value(),
            connect_timeout=settings.connect_timeout_s,
            send_receive_timeout=settings.send_receive_timeout_s,
            settings={"use_client_time_zone": False},
        )

    def _execute(self, sql: str, data: Iterable | None = None) -> list[tuple]:
        from clickhouse_driver.errors import Error as DriverError

        try:
            with self._lock:
                return self._client.execute(sql, data) if data is not None else self._client.execute(sql)
        except (DriverError, OSError, EOFError, *_ENCODING_ERRORS) as exc:
            self._client.disconnect()
            raise classify_error(exc, "ClickHouse server error") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        return self._execute(render(sql, params))

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._execute(render(sql, params))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", [tuple(r) for r in rows])

    def server_version(self) -> tuple[int, ...]:
        (version,) = self.query("SELECT version()")[0]
        return tuple(int(part) for part in version.split(".")[:3])

    def close(self) -> None:
        self._client.disconnect()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, tuple):
        return list(value)
    return value


class EmbeddedClient:
    """chDB adapter: ClickHouse in this process, data under `embedded_path` (one process only)."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        from chdb import session

        settings.embedded_path.mkdir(parents=True, exist_ok=True)
        self.database = settings.database
        self._lock = threading.Lock()
        try:
            self._session = session.Session(str(settings.embedded_path))
        except Exception as exc:  # chdb raises plain RuntimeError on a locked path
            raise StorageError(
                f"cannot open embedded ClickHouse at {settings.embedded_path}: {exc} "
                "(chDB allows one process per data path; stop the other finpulse process "
                "or use FINPULSE_CLICKHOUSE_MODE=server)"
            ) from exc

    def _run(self, sql: str, fmt: str = "JSONCompact") -> Any:
        try:
            with self._lock:
                return self._session.query(sql, fmt)
        except Exception as exc:
            raise classify_error(exc, "chDB error") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        result = self._run(render(sql, params))
        payload = result.bytes()
        if not payload:
            return []
        decoded = orjson.loads(payload)
        types = [column["type"] for column in decoded["meta"]]
        return [tuple(_from_json(v, t) for v, t in zip(row, types, strict=True)) for row in decoded["data"]]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params), "TabSeparated")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            lines = b"\n".join(
                orjson.dumps({c: _json_value(v) for c, v in zip(columns, row, strict=True)}) for row in rows
            )
        except _ENCODING_ERRORS as exc:  # e.g. a lone surrogate: refused like the server driver does
            raise classify_error(exc, "chDB error") from exc
        self._run(
            f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow\n" + lines.decode(),
            "TabSeparated",
        )

    def server_version(self) -> tuple[int, ...]:
        (version,) = self.query("SELECT version()")[0]
        return tuple(int(part) for part in version.split(".")[:3])

    def close(self) -> None:
        self._session.close()


def _from_json(value: Any, type_name: str) -> Any:
    """Convert chDB's JSONCompact values to what clickhouse-driver returns for the same type."""
    if value is None:
        return None
    base = type_name.removeprefix("Nullable(").rstrip(")") if type_name.startswith("Nullable(") else type_name
    if base.startswith("DateTime"):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    if base.startswith(("UInt64", "Int64", "UInt128", "Int128")) and isinstance(value, str):
        return int(value)
    return value


def connect(settings: ClickHouseSettings) -> ClickHouseClient:
    """Open the adapter the settings ask for."""
    if settings.mode == "server":
        return ServerClient(settings)
    return EmbeddedClient(settings)


def readiness_check(client: ClickHouseClient) -> Callable[[], CheckResult]:
    """A readiness check (see ingest.ops) that passes when ClickHouse answers `SELECT 1`."""

    def check() -> CheckResult:
        client.query("SELECT 1")
        return CheckResult(True, "SELECT 1 answered")

    return check
