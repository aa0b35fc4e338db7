"""Migration 0005 builds the daily rollups from the rows already in the ledger, and 0007, 0008 and 0010
the coarser ones from them (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alembic import command
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from calcifer.domain.ledger import GroupBy, SpendGroup, SpendRecord
from calcifer.storage.database import Database
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.migrator import _config
from calcifer.storage.schema import spend

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _row(n: int, status: int, cost: Decimal | None, tokens: int, **fields: object) -> dict[str, object]:
    return {
        "time": T0 + timedelta(hours=n),
        "request_id": f"r{n}",
        "key_id": "k1",
        "end_user": None,
        "team": "red",
        "model": "m1",
        "provider": "p1",
        "status": status,
        "prompt_tokens": tokens,
        "completion_tokens": tokens,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost": cost,
        "price_version": "v",
        "latency_ms": 1,
        "streamed": False,
        "cut_short": False,
        "estimated": False,
        "cache_hit": False,
        "cost_saved": None,
        **fields,
    }


def _again_from_0003(connection: Connection) -> None:
    config = _config(connection)
    command.downgrade(config, "0004")
    connection.execute(
        insert(spend),
        [
            _row(0, 200, Decimal("1.000000000001"), 10),
            _row(1, 200, Decimal("5000000.5"), 10),  # past 2**63 pico-dollars once summed
            _row(2, 200, Decimal("5000000.5"), 10),
            _row(3, 200, None, 10),  # unpriced
            _row(4, 429, Decimal(0), 0),
            _row(5, 401, Decimal(0), 0),
            _row(6, 502, Decimal(0), 0),
            _row(24, 200, Decimal("0.5"), 10, cache_hit=True, cost_saved=Decimal("0.25")),
        ],
    )
    command.upgrade(config, "head")


async def test_the_migration_sums_existing_rows_into_rollups(db: Database) -> None:
    async with db.engine.begin() as connection:
        await connection.run_sync(_again_from_0003)
    ledger = SqlLedger(db)
    by_day = await ledger.query(("day", "team"))
    assert [g.values for g in by_day.groups] == [("2026-03-01", "red"), ("2026-03-02", "red")]
    first, second = by_day.groups
    assert (first.requests, first.refused_rate, first.refused_auth, first.failed, first.unpriced) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert first.cost == Decimal("10000002.000000000001")
    assert (second.requests, second.cost, second.cost_saved) == (1, Decimal("0.5"), Decimal("0.25"))
    assert first.prompt_tokens == 40
    by_key = await ledger.query(("day", "key"))  # the key-level table: the same sums
    assert [(g.requests, g.cost, g.cost_saved) for g in by_key.groups] == [
        (g.requests, g.cost, g.cost_saved) for g in by_day.groups
    ]


def _again_from_0006(connection: Connection) -> None:
    config = _config(connection)
    command.downgrade(config, "0006")
    command.upgrade(config, "head")


async def test_the_coarser_rollups_are_rebuilt_from_the_key_level_ones(db: Database) -> None:
    ledger = SqlLedger(db, batch_size=7)
    await ledger.start()
    for n in range(60):
        cost = Decimal(n * 1_000_003).scaleb(-9) if n % 5 else None
        team, model = ("red", "blue", None)[n % 3], f"m{n % 4}"
        ledger.record(
            SpendRecord(
                time=T0 + timedelta(hours=17 * n),  # 42 days: blocks of 4 and 16 days, and days
                request_id=f"r{n}",
                key_id=f"k{n % 6}",
                user=None,
                team=team,
                model=model,
                provider="p",
                status=200,
                prompt_tokens=n,
                cost=cost,
                customer=f"c{n % 4}" if n % 7 else None,
                tags=("a", "b")[: n % 3],
            )
        )
    await ledger.aclose()
    asks: list[tuple[GroupBy, ...]] = [("team", "model"), ("day",), ("provider",), ("key",), ("customer",)]
    asks += [("tag", "day"), ("user",)]
    since = (None, T0 + timedelta(days=3), T0 + timedelta(days=9))

    async def reports() -> list[tuple[SpendGroup, ...]]:
        return [(await ledger.query(by, since=start)).groups for by in asks for start in since]

    before = await reports()
    async with db.engine.begin() as connection:
        await connection.run_sync(_again_from_0006)
    assert await reports() == before
    assert all(before) and before[4][0].cost is not None
    by_block = await ledger.query(("team", "model"), since=T0 + timedelta(days=9))
    by_day = await ledger.query(("day", "team", "model"), since=T0 + timedelta(days=9))
    assert sum(g.requests for g in by_block.groups) == sum(g.requests for g in by_day.groups) > 0
