"""Open the Calcifer database, SQLite or PostgreSQL, and bring its schema up to date.

`open_database("sqlite:///./calcifer.db")` or `open_database("postgresql://user@host/db")` maps the URL to
an async driver (aiosqlite, asyncpg), applies the Alembic migrations (idempotent; serialised by an
advisory lock on PostgreSQL so that replicas starting together do not race) and returns a `Database`
that owns the connection pool until `aclose()`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x63616C6369666572  # "calcifer": the advisory lock that serialises migrations
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class Database:
    """An open, migrated database: the engine (a connection pool), its dialect, and the PostgreSQL schema
    its tables live in (None: the default search path)."""

    engine: AsyncEngine
    dialect: Dialect
    schema: str | None = None

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One trivial query (the `Reachable` port: readiness)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def async_url(url: str) -> URL:
    """`url` with the async driver Calcifer uses for it; `ValueError` for anything but SQLite/PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("the database URL is not a valid URL (sqlite:///path or postgresql://...)") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or postgresql://..."
        )
    parsed = parsed.set(drivername=driver)
    if driver.startswith("postgresql") and "sslmode" in parsed.query:
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")  # asyncpg's name for libpq's sslmode
        parsed = parsed.set(query=query)
    return parsed


async def open_database(url: str, *, schema: str | None = None, migrate: bool = True) -> Database:
    """Connect to `url` and apply the migrations (unless `migrate=False`).

    `schema` (PostgreSQL only) puts every table in that schema, created if missing: one database can
    then hold several independent Calcifer ledgers (tests use this to run in parallel).
    """
    target = async_url(url)
    dialect: Dialect = "sqlite" if target.drivername.startswith("sqlite") else "postgresql"
    if schema is not None and (dialect != "postgresql" or not _SCHEMA_NAME.match(schema)):
        raise ValueError("schema must be a lower-case SQL identifier, and is for PostgreSQL only")
    if dialect == "sqlite":
        engine = _sqlite_engine(target)
    else:
        connect_args = {"server_settings": {"search_path": schema}} if schema else {}
        engine = create_async_engine(target, pool_pre_ping=True, connect_args=connect_args)
    database = Database(engine, dialect, schema)
    if migrate:
        try:
            await _migrate(database, schema)
        except BaseException:
            await engine.dispose()
            raise
    return database


def _sqlite_engine(target: URL) -> AsyncEngine:
    memory = target.database in (None, "", ":memory:")
    if memory:
        # One shared connection: every new connection to ":memory:" would be a new, empty database.
        engine = create_async_engine(target, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(str(target.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA busy_timeout=10000")  # wait for another writer instead of failing
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint, much faster
        cursor.close()

    return engine


async def _migrate(database: Database, schema: str | None) -> None:
    async with database.engine.begin() as connection:
        if database.dialect == "sqlite":
            # Take the write lock first: the whole migration is then one transaction, and a process
            # starting at the same moment waits for it (busy_timeout) instead of racing it.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _MIGRATION_LOCK})
            if schema is not None:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    from alembic import command  # imported here: a serving process migrates in a child (see below)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate_in_child(url: str, schema: str | None = None) -> None:
    """Apply the migrations in a short-lived child process, so that a serving gateway never loads
    Alembic (some 11 MB that would stay resident for nothing). Raises `RuntimeError` on failure."""
    args = [sys.executable, "-m", "calcifer.storage.database", url, *([schema] if schema else [])]
    child = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await child.communicate()
    if child.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"database migration failed: {lines[-1] if lines else 'no output'}")


async def _migrate_main(url: str, schema: str | None) -> None:
    database = await open_database(url, schema=schema, migrate=True)
    await database.aclose()


if __name__ == "__main__":
    asyncio.run(_migrate_main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
