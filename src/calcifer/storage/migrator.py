"""The schema's migrations: where a database stands, and bringing it to the newest revision.

Migrations are Alembic revisions in `migrations/versions`, one linear chain. `upgrade()` applies the
pending ones inside one transaction, under an advisory lock on PostgreSQL (SQLite: its write lock), so
that several `calcifer migrate` runs, or replicas starting together, never race. Alembic is imported only
when these functions run (a serving gateway asks a child process: `database.migrate_in_child`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x63616C6369666572  # "calcifer": the advisory lock that serialises migrations


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations this Calcifer ships.

    `current` is the database's revision (None: no Calcifer schema yet), `head` the newest revision known
    here, `pending` what `upgrade` would apply, oldest first. `newer` means the database was migrated by a
    newer Calcifer (a revision unknown here): nothing is pending and this version can still serve it
    (migrations only add), which is what a rolling upgrade needs from the replicas not yet replaced."""

    current: str | None
    head: str
    pending: tuple[str, ...]
    newer: bool = False

    def describe(self) -> str:
        at = f"at revision {self.current}" if self.current else "empty (no Calcifer schema)"
        if self.newer:
            return f"the database is {at}, newer than this Calcifer's head {self.head}: nothing to apply"
        if not self.pending:
            return f"the database is {at}, the head: nothing to apply"
        return f"the database is {at}; pending: {', '.join(self.pending)} (head {self.head})"


async def upgrade(connection: AsyncConnection, dialect: str, schema: str | None) -> SchemaStatus:
    """Apply the pending migrations on `connection` (inside its transaction); return where the database
    stood before (its `pending` is what was applied)."""
    await _lock(connection, dialect, schema)
    return await connection.run_sync(_upgrade)


async def status(connection: AsyncConnection) -> SchemaStatus:
    """Where the database on `connection` stands (read only)."""
    return await connection.run_sync(_status)


async def _lock(connection: AsyncConnection, dialect: str, schema: str | None) -> None:
    if dialect == "sqlite":
        # Take the write lock first: the whole migration is then one transaction, and a process
        # starting at the same moment waits for it (busy_timeout) instead of racing it.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    await connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _MIGRATION_LOCK})
    if schema is not None:
        await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def _config(connection: Connection) -> Config:
    from alembic.config import Config  # imported here: only migrating processes load Alembic

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _status(connection: Connection) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config(connection))
    chain = [revision.revision for revision in script.walk_revisions()]  # newest first
    heads = MigrationContext.configure(connection).get_current_heads()
    current = heads[0] if heads else None
    if current is not None and current not in chain:
        return SchemaStatus(current, chain[0], (), newer=True)
    pending = chain[: chain.index(current)] if current is not None else chain
    return SchemaStatus(current, chain[0], tuple(reversed(pending)))


def _upgrade(connection: Connection) -> SchemaStatus:
    from alembic import command

    before = _status(connection)
    if before.pending:
        command.upgrade(_config(connection), "head")
    return before
