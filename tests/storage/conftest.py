"""Databases for the storage contract suites: a SQLite file per test, and a real PostgreSQL.

PostgreSQL is at `CALCIFER_TEST_POSTGRES_URL` (default postgresql://postgres@127.0.0.1:5432/test); each
test gets its own schema, dropped afterwards, so parallel runs never meet. When the server is unreachable
the PostgreSQL cases skip loudly, unless `CALCIFER_REQUIRE_SERVICES` is set (CI): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from calcifer.storage.database import Database, async_url, open_database

POSTGRES_URL = os.environ.get("CALCIFER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
Open = Callable[[], Awaitable[Database]]


async def _postgres_reachable() -> bool:
    engine = create_async_engine(async_url(POSTGRES_URL), connect_args={"timeout": 2})
    try:
        async with engine.connect():
            return True
    except (OSError, SQLAlchemyError, TimeoutError):
        return False
    finally:
        await engine.dispose()


async def _drop_schema(schema: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL))
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Open]:
    """Opens (and re-opens) one test database of each kind; closes whatever it opened."""
    kind: str = request.param
    opened: list[Database] = []
    schema: str | None = None
    if kind == "postgresql":
        if not await _postgres_reachable():
            message = f"PostgreSQL is not reachable at {POSTGRES_URL}: its storage tests did not run"
            if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
                pytest.fail(message)
            pytest.skip(message)
        schema = f"calcifer_test_{uuid.uuid4().hex[:16]}"
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'calcifer.db'}"

    async def open_() -> Database:
        database = await open_database(url, schema=schema)
        opened.append(database)
        return database

    yield open_
    for database in opened:
        await database.aclose()
    if schema is not None:
        await _drop_schema(schema)


@pytest.fixture
async def db(open_db: Open) -> Database:
    return await open_db()
