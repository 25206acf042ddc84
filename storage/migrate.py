"""Versioned schema migrations: `storage/migrations/NNN_name.sql`, applied once each, in order.

A file whose first line is `-- requires: access-management` (roles and grants) is applied only
where the server has SQL access management and this account may use it; elsewhere (ClickHouse
18.16, chDB) it is skipped without being recorded, so a later run applies it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from storage.client import ClickHouseClient, StorageError

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_RETENTION_COLUMNS = {
    "classifications": "published_at",
    "pipeline_batches": "stored_at",
    "dead_letters": "received_at",
}
# Table-level TTL arrived in ClickHouse 19.6; older servers keep data until deleted by hand.
_TTL_SINCE = (19, 6)
# SQL-driven access control (CREATE ROLE, GRANT) arrived in ClickHouse 20.4/20.5.
_ACCESS_MANAGEMENT_SINCE = (20, 5)
_REQUIRES_ACCESS = "-- requires: access-management"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, database: str) -> list[str]:
        """The file's statements with `{db}` replaced, comments dropped."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip().replace("{db}", database) for s in body.split(";") if s.strip()]

    @property
    def requires_access_management(self) -> bool:
        return self.sql.startswith(_REQUIRES_ACCESS)


def has_access_management(client: ClickHouseClient) -> bool:
    """True when the server has SQL access management and this account may read its roles."""
    if client.server_version() < _ACCESS_MANAGEMENT_SINCE:
        return False
    try:
        client.query("SELECT count() FROM system.roles")
    except StorageError:  # chDB, or an account without access management
        return False
    return True


def available_migrations() -> list[Migration]:
    """All migrations shipped with the package, ordered by version."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(client: ClickHouseClient, retention_days: int | None = None) -> list[Migration]:
    """Create the database if needed and apply pending migrations; return those applied."""
    db = client.database
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime('UTC')) ENGINE = MergeTree() ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_migrations")}
    applied = []
    access: bool | None = None
    for migration in available_migrations():
        if migration.version in done:
            continue
        if migration.requires_access_management:
            access = has_access_management(client) if access is None else access
            if not access:
                log.info("migration %03d_%s skipped: no SQL access management here", migration.version,
                         migration.name)  # fmt: skip
                continue
        for statement in migration.statements(db):
            client.command(statement)
        client.insert(
            f"{db}.schema_migrations",
            ["version", "name", "applied_at"],
            [(migration.version, migration.name, datetime.now(UTC))],
        )
        applied.append(migration)
    if retention_days and client.server_version() >= _TTL_SINCE:
        for table, column in _RETENTION_COLUMNS.items():
            client.command(
                f"ALTER TABLE {db}.{table} MODIFY TTL {column} + INTERVAL {int(retention_days)} DAY"
            )
    return applied
