"""Upgrading a database made by the first released schema (revision 0001) to the head: keys and ledger
rows written at 0001 all survive, and every spend report gives the same totals before and after."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

import calcifer.storage.migrations as _migrations_package
from calcifer.domain.keys import issue_key
from calcifer.domain.ledger import GroupBy, SpendReport
from calcifer.storage.database import apply_migrations, open_database
from calcifer.storage.keys import SqlKeyStore, _values
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.schema import spend, virtual_keys
from tests.storage.conftest import POSTGRES_URL, _drop_schema, _postgres_reachable
from tests.storage.test_database import HEAD

GROUPINGS: tuple[GroupBy, ...] = ("key", "model", "provider", "user", "team", "day")
_DIMENSION = {"key": "key_id", "model": "model", "provider": "provider", "user": "end_user", "team": "team"}
NOW = datetime.now(UTC).replace(microsecond=0)


def to_first_schema(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(_migrations_package.__file__).parent))
    config.attributes["connection"] = connection
    command.upgrade(config, "0001")


def _first_schema(values: dict[str, object]) -> dict[str, object]:
    """A key's columns as revision 0001 had them."""
    return {name: value for name, value in values.items() if name not in ("user_id", "team_id", "role")}


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


Totals = dict[str | None, tuple[int, int, int, Decimal | None, int]]


def _expected(rows: list[dict[str, Any]], group_by: GroupBy) -> Totals:
    """What a report by `group_by` must say of `rows` (the rows written at revision 0001)."""
    totals: Totals = {}
    for row in rows:
        name = row["time"].strftime("%Y-%m-%d") if group_by == "day" else row[_DIMENSION[group_by]]
        requests, prompt, completion, cost, unpriced = totals.get(name, (0, 0, 0, None, 0))
        if row["cost"] is not None:
            cost = (cost or Decimal(0)) + row["cost"]
        totals[name] = (
            requests + 1,
            prompt + row["prompt_tokens"],
            completion + row["completion_tokens"],
            cost,
            unpriced + (row["cost"] is None),
        )
    return totals


def _totals(report: SpendReport) -> Totals:
    return {
        g.group: (g.requests + g.failed, g.prompt_tokens, g.completion_tokens, g.cost, g.unpriced)
        for g in report.groups
    }


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
            rows: list[dict[str, Any]] = [_row(n) for n in range(1, 120)]
            await connection.execute(insert(spend), rows)
            keys_before = [
                issue_key(f"team-{n}", max_budget=Decimal(f"{n}.25") if n else None, models=("gpt-4o",))[0]
                for n in range(5)
            ]
            keys_before[0] = replace(keys_before[0], revoked=True)
            await connection.execute(
                insert(virtual_keys), [{"id": key.id, **_first_schema(_values(key))} for key in keys_before]
            )

        applied = await apply_migrations(database)

        assert applied.current == "0001" and applied.pending[0] == "0002" and applied.pending[-1] == HEAD
        keys_after = await SqlKeyStore(database).list_keys(include_revoked=True)
        assert sorted(keys_after, key=lambda k: k.id) == sorted(keys_before, key=lambda k: k.id)
        ledger = SqlLedger(database)
        for group_by in GROUPINGS:
            assert _totals(await ledger.query(group_by)) == _expected(rows, group_by), group_by
        week = [r for r in rows if r["key_id"] == "key-1" and r["time"] >= NOW - timedelta(days=7)]
        last_week = await ledger.query("model", since=NOW - timedelta(days=7), until=NOW, key_id="key-1")
        # Reports cover whole days: the first day's earlier rows count too.
        earlier = [
            r for r in rows if r["key_id"] == "key-1" and r["time"].date() == (NOW - timedelta(days=7)).date()
        ]
        assert _totals(last_week) == _expected([*earlier, *(r for r in week if r not in earlier)], "model")
        async with database.engine.connect() as connection:
            saved = await connection.execute(text("SELECT count(*) FROM spend WHERE cost_saved IS NULL"))
            assert saved.scalar_one() == 119  # the new column is empty for the rows that predate it
    finally:
        await database.aclose()
        if schema is not None:
            await _drop_schema(schema)
