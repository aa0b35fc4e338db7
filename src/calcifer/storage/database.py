"""Open the Calcifer database, SQLite or PostgreSQL, and bring its schema up to date.

`open_database("sqlite:///./calcifer.db")` or `open_database("postgresql://user@host/db")` maps the URL to
an async driver (aiosqlite, asyncpg), applies the Alembic migrations (`migrator.py`: idempotent; serialised
by an advisory lock on PostgreSQL so that replicas starting together do not race) and returns a
`Database` that owns the connection pool until `aclose()`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from calcifer.storage import migrator

_BEHIND = 3  # the migrating child's exit code when `--check` finds the schema behind
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
            await apply_migrations(database)
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


async def apply_migrations(database: Database) -> migrator.SchemaStatus:
    """Apply the pending migrations to an open `database`; return where it stood before (its `pending`
    is what was applied)."""
    async with database.engine.begin() as connection:
        return await migrator.upgrade(connection, database.dialect, database.schema)


async def schema_status(database: Database) -> migrator.SchemaStatus:
    """Where an open `database`'s schema stands (read only)."""
    async with database.engine.connect() as connection:
        return await migrator.status(connection)


async def migrate_in_child(url: str, schema: str | None = None, *, check: bool = False) -> None:
    """Apply the migrations (with `check`: only verify that none is pending) in a short-lived child
    process, so that a serving gateway never loads Alembic (some 11 MB that would stay resident for
    nothing). Raises `RuntimeError` naming what is wrong when it fails or finds the schema behind."""
    args = [sys.executable, "-m", "calcifer.storage.database", *(["--check"] if check else []), url]
    child = await asyncio.create_subprocess_exec(
        *args,
        *([schema] if schema else []),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await child.communicate()
    lines = err.decode("utf-8", "replace").strip().splitlines()
    if child.returncode == _BEHIND:
        raise RuntimeError(lines[-1])
    if child.returncode != 0:
        raise RuntimeError(f"database migration failed: {lines[-1] if lines else 'no output'}")


async def _child(argv: list[str]) -> int:
    check = argv[:1] == ["--check"]
    url, *rest = argv[1:] if check else argv
    database = await open_database(url, schema=rest[0] if rest else None, migrate=not check)
    try:
        if not check:
            return 0
        found = await schema_status(database)
    finally:
        await database.aclose()
    if found.pending:
        print(
            f"the database schema is behind this Calcifer ({found.describe()}): run `calcifer migrate` "
            "first (with CALCIFER_MIGRATE=off the gateway never migrates by itself)",
            file=sys.stderr,
        )
        return _BEHIND
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_child(sys.argv[1:])))
