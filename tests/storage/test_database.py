"""Opening the database: URL mapping, migrations (idempotent, race-free, matching the schema), pragmas."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

import calcifer.storage.migrations.versions as _versions_package
from calcifer.domain.ledger import SpendRecord
from calcifer.storage.database import Database, async_url, open_database
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.schema import METADATA
from tests.storage.conftest import Open

# The newest migration's revision (its file is named v<revision>_<what>.py).
HEAD = max(p.name[1:5] for p in Path(_versions_package.__file__).parent.glob("v[0-9][0-9][0-9][0-9]_*.py"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./calcifer.db", "sqlite+aiosqlite:///./calcifer.db"),
        ("sqlite:////var/lib/calcifer.db", "sqlite+aiosqlite:////var/lib/calcifer.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@db:5432/calc", "postgresql+asyncpg://u@db:5432/calc"),
        ("postgres://u@db/calc", "postgresql+asyncpg://u@db/calc"),
        ("postgresql+asyncpg://u@db/calc", "postgresql+asyncpg://u@db/calc"),
        ("postgresql://u@db/calc?sslmode=require", "postgresql+asyncpg://u@db/calc?ssl=require"),
    ],
)
def test_urls_map_to_async_drivers(url: str, expected: str) -> None:
    assert async_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["mysql://u@db/calc", "not a url", "postgresql+psycopg2://u@db/calc"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        async_url(url)


def test_passwords_stay_out_of_errors() -> None:
    with pytest.raises(ValueError) as caught:
        async_url("mysql://u:hunter2-secret@db/calc")
    assert "hunter2" not in str(caught.value)


async def test_schema_is_for_postgresql_and_must_be_an_identifier() -> None:
    with pytest.raises(ValueError, match="schema"):
        await open_database("sqlite://", schema="calcifer")
    with pytest.raises(ValueError, match="schema"):
        await open_database("postgresql://u@127.0.0.1:1/x", schema='x"; DROP TABLE spend; --')


async def _versions(db: Database) -> list[str]:
    async with db.engine.connect() as connection:
        return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def test_migrations_are_idempotent_and_keep_data_across_restarts(open_db: Open) -> None:
    first = await open_db()
    ledger = SqlLedger(first)
    ledger.record(
        SpendRecord(datetime.now(UTC), "r1", None, None, None, "m", "p", 200, cost=Decimal("0.000000000001"))
    )
    await ledger.aclose()
    await first.aclose()
    again = await open_db()
    assert await _versions(again) == [HEAD]
    report = await SqlLedger(again).query("model")
    assert (report.total.requests, report.total.cost) == (1, Decimal("0.000000000001"))


_OPEN = """
import asyncio, sys
from calcifer.storage.database import open_database

async def main() -> None:
    db = await open_database(sys.argv[1], schema=sys.argv[2] or None)
    await db.aclose()

asyncio.run(main())
"""


async def test_replicas_starting_together_migrate_once(open_db: Open) -> None:
    db = await open_db()
    url = (
        db.engine.url.render_as_string(hide_password=False).replace("+aiosqlite", "").replace("+asyncpg", "")
    )
    async with db.engine.begin() as connection:  # back to an empty database
        for table in (*(t.name for t in reversed(METADATA.sorted_tables)), "alembic_version"):
            await connection.execute(text(f"DROP TABLE {table}"))
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OPEN, url, db.schema or "", stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    for replica in replicas:
        _, stderr = await replica.communicate()
        assert replica.returncode == 0, stderr.decode()
    assert await _versions(db) == [HEAD]


async def test_migrated_schema_matches_the_tables_the_code_uses(db: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), METADATA))

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_sqlite_runs_in_wal_mode_and_waits_for_locks(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path}/wal.db")
    try:
        async with db.engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert int((await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()) >= 5000
    finally:
        await db.aclose()


async def test_in_memory_sqlite_is_one_database() -> None:
    db = await open_database("sqlite://")
    try:
        ledger = SqlLedger(db)
        ledger.record(SpendRecord(datetime.now(UTC), "r1", None, None, None, "m", "p", 200))
        await ledger.aclose()
        assert (await ledger.query("model")).total.requests == 1
    finally:
        await db.aclose()


async def test_an_unreachable_database_fails_at_start() -> None:
    with pytest.raises((OSError, SQLAlchemyError)):
        await open_database("postgresql://postgres@127.0.0.1:1/test")


async def test_a_sqlite_file_gets_its_directory(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path}/new/dir/calcifer.db")
    await db.aclose()
    assert (tmp_path / "new" / "dir" / "calcifer.db").is_file()
