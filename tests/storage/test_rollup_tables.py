"""Reports read the narrowest rollup that answers them exactly: the one without keys and users
(`spend_daily_models`, and its blocks of days `spend_blocks_models`) and the one of each dimension alone
(`spend_daily_each`) give, group for group and to the last pico-dollar, what the key-level tables give,
on a randomised ledger (SQLite, PostgreSQL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from typing import Any

import pytest
from sqlalchemy import Table

from calcifer.domain.ledger import GroupBy, Outcome, SpendGroup, SpendRecord
from calcifer.storage.database import Database
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.rollups import FIELDS
from calcifer.storage.schema import (
    BLOCK_DAYS,
    from_pico,
    spend_daily,
    spend_daily_customers,
    spend_daily_each,
    spend_daily_models,
    spend_daily_tags,
)
from calcifer.storage.spend_reports import _cover, group_of, report_statement, rollup_for

T0 = datetime(2026, 3, 1, tzinfo=UTC)
COARSE: tuple[GroupBy, ...] = ("day", "team", "model", "provider")
OUTCOMES: tuple[Outcome, ...] = (
    "answered",
    "answered",
    "answered",
    "refused_budget",
    "refused_rate",
    "refused_auth",
    "failed",
)


def random_ledger(seed: int, rows: int, days: int = 5) -> list[SpendRecord]:
    pick = random.Random(seed)
    records = []
    for n in range(rows):
        key = pick.choice([None, *(f"k{i}" for i in range(6))])
        model = pick.choice(["m1", "m2", "m3"])
        priced = pick.random() < 0.85
        records.append(
            SpendRecord(
                time=T0 + timedelta(days=pick.randrange(days), seconds=pick.randrange(86400)),
                request_id=f"r{n}",
                key_id=key,
                user=pick.choice([None, "u1", "u2", "u3"]),
                team=pick.choice([None, "red", "blue"]),
                model=model,
                provider=pick.choice(["p1", "p2"]) if model != "m3" else "p3",
                status=200,
                prompt_tokens=pick.randrange(5000),
                completion_tokens=pick.randrange(2000),
                cost=Decimal(pick.randrange(10**15)).scaleb(-12) if priced else None,  # up to $1000
                price_version="v",
                latency_ms=1,
                cached_tokens=pick.randrange(100),
                reasoning_tokens=pick.randrange(100),
                cache_hit=pick.random() < 0.1,
                cost_saved=Decimal(pick.randrange(10**9)).scaleb(-12) if pick.random() < 0.1 else None,
                customer=pick.choice([None, "c1", "c2"]),
                tags=tuple(pick.sample(["a", "b"], pick.randrange(3))),
                outcome=pick.choice(OUTCOMES),
            )
        )
    return records


async def report(db: Database, table: Table, group_by: tuple[GroupBy, ...], **where: str) -> set[SpendGroup]:
    return await report_over(db, table, group_by, (T0 + timedelta(days=1), T0 + timedelta(days=4)), where)


async def report_over(
    db: Database,
    table: Table | None,
    group_by: tuple[GroupBy, ...],
    span: tuple[datetime | None, datetime | None],
    where: dict[str, str],
) -> set[SpendGroup]:
    """The report of the days in `span` from `table` (None: what the ledger reads)."""
    statement, parameters = report_statement(group_by, *span, where, table)
    async with db.engine.connect() as connection:
        rows = (await connection.execute(statement, parameters)).all()
    return {group_of(row, len(group_by)) for row in rows}


async def test_the_coarse_rollup_gives_the_key_level_reports_exactly(db: Database) -> None:
    records = random_ledger(seed=16, rows=1500)
    ledger = SqlLedger(db, batch_size=97)  # many batches: the upserts add to rows already there
    await ledger.start()
    for record in records:
        ledger.record(record)
    await ledger.aclose()
    asks: list[tuple[tuple[GroupBy, ...], dict[str, Any]]] = [((name,), {}) for name in COARSE]
    asks += [(pair, {}) for pair in combinations(COARSE, 2)]
    asks += [(("model",), {"team": "red"}), (("day", "provider"), {"team": "blue", "model": "m1"})]
    for group_by, where in asks:
        coarse = await report(db, spend_daily_models, group_by, **where)
        assert coarse == await report(db, spend_daily, group_by, **where), (group_by, where)
        assert coarse  # the window has rows for every ask
    # And both equal the rows themselves, summed in Decimal here.
    window = [r for r in records if T0 + timedelta(days=1) <= r.time < T0 + timedelta(days=4)]
    by_team = {g.group: g for g in await report(db, spend_daily_models, ("team",))}
    for team in (None, "red", "blue"):
        mine = [r for r in window if r.team == team]
        priced = [r.cost for r in mine if r.cost is not None]
        group = by_team[team]
        assert group.cost == sum(priced, Decimal(0))
        assert group.cost_saved == sum((r.cost_saved or Decimal(0) for r in mine), Decimal(0))
        assert group.requests == sum(r.outcome == "answered" for r in mine)
        assert group.failed == sum(r.outcome == "failed" for r in mine)
        assert group.unpriced == len(mine) - len(priced)
        assert group.prompt_tokens == sum(r.prompt_tokens for r in mine)


@pytest.mark.parametrize(
    ("dimension", "fine", "value"),
    [
        ("key", spend_daily, "k1"),
        ("team", spend_daily, "red"),
        ("user", spend_daily, "u2"),
        ("model", spend_daily, "m3"),
        ("provider", spend_daily, "p1"),
        ("customer", spend_daily_customers, "c1"),
        ("tag", spend_daily_tags, "b"),
    ],
)
async def test_each_dimension_alone_gives_the_key_level_reports_exactly(
    db: Database, dimension: GroupBy, fine: Table, value: str
) -> None:
    ledger = SqlLedger(db, batch_size=61)
    await ledger.start()
    for record in random_ledger(seed=15, rows=700):
        ledger.record(record)
    await ledger.aclose()
    for group_by, where in [
        ((dimension,), {}),
        (("day", dimension), {}),
        ((dimension, "day"), {dimension: value}),
    ]:
        alone = await report(db, spend_daily_each, group_by, **where)
        assert alone == await report(db, fine, group_by, **where), (group_by, where)
        assert len(alone) > 1


async def test_reports_through_the_ledger_equal_the_key_level_sums(db: Database) -> None:
    ledger = SqlLedger(db)
    await ledger.start()
    for record in random_ledger(seed=14, rows=400):
        ledger.record(record)
    await ledger.aclose()
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=4)
    for group_by in (("team",), ("model",), ("team", "model")):
        fine = await report(db, spend_daily, group_by)
        answered = await ledger.query(group_by, since, until)
        assert set(answered.groups) == fine


@pytest.mark.parametrize(
    ("dimensions", "table"),
    [
        (("day",), spend_daily_models),
        (("team", "model"), spend_daily_models),
        (("provider", "team"), spend_daily_models),
        (("team",), spend_daily_each),
        (("day", "model"), spend_daily_each),
        (("key", "key"), spend_daily_each),  # grouped and filtered by key
        (("customer",), spend_daily_each),
        (("tag", "day"), spend_daily_each),
        (("team", "key"), spend_daily),  # grouped by team, filtered by key
        (("model", "user"), spend_daily),
        (("team", "customer"), spend_daily_customers),
        (("model", "tag"), spend_daily_tags),
        (("tag", "customer"), spend_daily_tags),
    ],
)
def test_each_report_reads_the_narrowest_rollup_that_has_its_dimensions(
    dimensions: tuple[GroupBy, ...], table: Table
) -> None:
    assert rollup_for(dimensions) is table


async def test_reports_from_blocks_of_days_equal_the_key_level_sums_over_any_span(db: Database) -> None:
    records = random_ledger(seed=17, rows=1200, days=75)
    ledger = SqlLedger(db, batch_size=89)
    await ledger.start()
    for record in records:
        ledger.record(record)
    await ledger.aclose()
    pick = random.Random(17)
    spans: list[tuple[datetime | None, datetime | None]] = [(None, None), (T0, None)]
    spans.append((None, T0 + timedelta(days=40)))
    for _ in range(12):
        first = pick.randrange(-3, 70)
        spans.append((T0 + timedelta(days=first), T0 + timedelta(days=first + pick.randrange(1, 50))))
    asks: list[tuple[tuple[GroupBy, ...], dict[str, str]]] = [
        (("team", "model"), {}),
        (("provider", "team"), {}),
        (("model", "provider"), {"team": "red"}),
        (("team", "model", "provider"), {}),
    ]
    for span in spans:
        for group_by, where in asks:
            blocks = await report_over(db, None, group_by, span, where)
            assert blocks == await report_over(db, spend_daily, group_by, span, where), (span, where)
    everything = await report_over(db, None, ("team", "model"), (None, None), {})  # 16-day blocks only
    assert everything == await report_over(db, spend_daily_models, ("team", "model"), (None, None), {})
    assert sum(g.requests for g in everything) == sum(r.outcome == "answered" for r in records)


@pytest.mark.parametrize("length", [1, 3, 4, 15, 16, 17, 31, 62, 365])
def test_a_span_of_days_is_covered_by_few_aligned_blocks_exactly_once(length: int) -> None:
    for first in range(20_000, 20_040):
        for end in (first + length, None):
            limit = first + 400 if end is None else end
            spans = _cover(first, end)
            days: list[int] = []
            for size, low, high in spans:
                assert low is not None and low % size == 0
                assert high is None or high % size == 0
                for start in range(low, limit if high is None else high, size):
                    days.extend(range(start, start + size))
            assert sorted(day for day in days if day < limit) == list(range(first, limit))
            assert len(spans) <= 2 * len(BLOCK_DAYS) + 1
            if end is not None and length == 31:  # a month's report reads at most 7 rows per group
                assert _blocks(spans) <= 7
    assert _cover(20_000, 20_000) == [] and _cover(None, None) == [(BLOCK_DAYS[-1], None, None)]
    assert _cover(None, 20_001) == [(1, 20_000, 20_001), (BLOCK_DAYS[-1], None, 20_000)]


def _blocks(spans: list[tuple[int, int | None, int | None]]) -> int:
    return sum((high - low) // size for size, low, high in spans if low is not None and high is not None)


@pytest.mark.parametrize("priced", [0, 3])
def test_a_report_row_becomes_a_group_sum_by_sum(priced: int) -> None:
    sums = {name: 10 + n for n, name in enumerate(FIELDS)} | {"priced": priced}
    group = group_of(("red", "", *(sums[name] for name in FIELDS)), 2)
    assert group.values == ("red", None)
    for name in ("requests", "prompt_tokens", "completion_tokens", "unpriced", "failed", "reasoning_tokens"):
        assert getattr(group, name) == sums[name], name
    for name in ("refused_budget", "refused_rate", "refused_auth", "cached_tokens", "cache_write_tokens"):
        assert getattr(group, name) == sums[name], name
    cost = from_pico(sums["cost_hi"] * 10**6 + sums["cost_lo"]) if priced else None
    assert (group.cost, group.cost_saved) == (
        cost,
        from_pico(sums["cost_saved_hi"] * 10**6 + sums["cost_saved_lo"]),
    )
