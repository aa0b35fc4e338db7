"""Upgrading a database made by the first released schema (revision 0001) to the head: keys and ledger
rows written at 0001 all survive, and every spend report gives the same totals before and after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

import calcifer.storage.migrations as _migrations_package
from calcifer.domain.keys import issue_key
from calcifer.domain.ledger import GroupBy, SpendReport
from calcifer.storage.database import Database, apply_migrations, open_database
from calcifer.storage.keys import SqlKeyStore
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.schema import spend
from tests.storage.conftest import POSTGRES_URL, _drop_schema, _postgres_reachable
from tests.storage.test_database import HEAD

GROUPINGS: tuple[GroupBy, ...] = ("key", "model", "provider", "user", "team", "day")
NOW = datetime.now(UTC).replace(microsecond=0)


def to_first_schema(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(_migrations_package.__file__).parent))
    config.attributes["connection"] = connection
    command.upgrade(config, "0001")


def _row(n: int) -> dict[str, object]:
    """A ledger row with only the columns revision 0001 had: some unpriced, some without key or user."""
    priced = n % 7 != 0
    return {
        "time": NOW - timedelta(hours=n * 5),
        "request_id": f"req-{n}",
        "key_id": None if n % 11 == 0 else f"key-{n % 3}",
        "end_user": None if n % 2 else f"user-{n % 4}",
        "team": f"team-{n % 2}",
        "model": ("gpt-4o", "claude-sonnet-4-5", "echo4", "local-llama")[n % 4],
        "provider": ("openai", "anthropic", "echo", "ollama")[n % 4],
        "status": 200 if n % 13 else 500,
        "prompt_tokens": 10 * n + 3,
        "completion_tokens": 7 * n + 1,
        "cached_tokens": n % 5,
        "cache_write_tokens": 0,
        "reasoning_tokens": n % 3,
        "cost": Decimal(f"0.{n:03d}000000123") if priced else None,
        "price_version": "genai-prices 0.0.1",
        "latency_ms": 100 + n,
        "streamed": n % 2 == 0,
        "cut_short": n % 17 == 0,
        "estimated": False,
        "cache_hit": False,
    }


async def _reports(database: Database) -> dict[str, SpendReport]:
    ledger = SqlLedger(database)
    reports: dict[str, SpendReport] = {g: await ledger.query(g) for g in GROUPINGS}
    reports["key-1 last week"] = await ledger.query(
        "model", since=NOW - timedelta(days=7), until=NOW, key_id="key-1"
    )
    return reports


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_first_schema_database_upgrades_without_losing_anything(kind: str, tmp_path: Path) -> None:
    schema = None
    if kind == "postgresql":
        if not await _postgres_reachable():
            pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}: the upgrade test did not run")
        url, schema = POSTGRES_URL, f"calcifer_upgrade_{uuid.uuid4().hex[:16]}"
    else:
        url = f"sqlite:///{tmp_path / 'calcifer.db'}"
    database = await open_database(url, schema=schema, migrate=False)
    try:
        async with database.engine.begin() as connection:
            if schema is not None:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            await connection.run_sync(to_first_schema)
            await connection.execute(insert(spend), [_row(n) for n in range(1, 120)])
        keys = SqlKeyStore(database)
        for n in range(5):
            key, _ = issue_key(f"team-{n}", max_budget=Decimal(f"{n}.25") if n else None, models=("gpt-4o",))
            await keys.create(key)
        await keys.revoke((await keys.list_keys())[0].id)
        keys_before = await keys.list_keys(include_revoked=True)
        reports_before = await _reports(database)
        assert reports_before["model"].total.requests == 119 and reports_before["model"].total.unpriced == 17

        applied = await apply_migrations(database)

        assert applied.current == "0001" and applied.pending[0] == "0002" and applied.pending[-1] == HEAD
        assert await keys.list_keys(include_revoked=True) == keys_before
        assert await _reports(database) == reports_before
        async with database.engine.connect() as connection:
            saved = await connection.execute(text("SELECT count(*) FROM spend WHERE cost_saved IS NULL"))
            assert saved.scalar_one() == 119  # the new column is empty for the rows that predate it
    finally:
        await database.aclose()
        if schema is not None:
            await _drop_schema(schema)
