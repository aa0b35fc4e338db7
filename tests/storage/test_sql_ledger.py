"""The `SpendLedger` contract, run against SQLite and a real PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError

from calcifer.domain.ledger import GROUP_BY, GroupBy, SpendLedger, SpendRecord
from calcifer.storage.database import Database
from calcifer.storage.ledger import SqlLedger, _refused
from calcifer.storage.schema import METADATA, spend

D = Decimal
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PLUS_5 = timezone(timedelta(hours=5))


def row(n: int = 0, **fields: Any) -> SpendRecord:
    base = SpendRecord(
        time=T0 + timedelta(seconds=n),
        request_id=f"req-{n}",
        key_id="key_a",
        user="alice",
        team="red",
        model="gpt-4o",
        provider="openai",
        status=200,
        prompt_tokens=10,
        completion_tokens=5,
        cost=D("0.000125"),
        price_version="genai-prices 0.0.1",
        latency_ms=12,
    )
    return replace(base, **fields)


async def count_rows(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(spend))).scalar_one())


async def stored(db: Database) -> list[Any]:
    async with db.engine.connect() as connection:
        return list((await connection.execute(select(spend).order_by(spend.c.id))).mappings().all())


async def started(db: Database, **options: Any) -> SqlLedger:
    ledger = SqlLedger(db, **options)
    await ledger.start()
    return ledger


async def test_is_a_spend_ledger(db: Database) -> None:
    assert isinstance(SqlLedger(db), SpendLedger)


async def test_every_field_round_trips_and_cost_is_exact(db: Database) -> None:
    costs = [D("0.000000000001"), D("12345.678901234567"), D("0.1"), D("0.2"), D(0), None]
    ledger = await started(db)
    first = row(
        0,
        cached_tokens=3,
        cache_write_tokens=2,
        reasoning_tokens=1,
        streamed=True,
        cut_short=True,
        estimated=True,
        cache_hit=True,
        cost_saved=D("0.000000000007"),
        status=499,
        latency_ms=2**40,
        time=datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=-1),
    )
    ledger.record(first)
    for n, cost in enumerate(costs, start=1):
        ledger.record(row(n, cost=cost, key_id=None, user=None, team=None))
    await ledger.aclose()
    rows = await stored(db)
    assert len(rows) == 1 + len(costs)
    got = rows[0]
    for name in ("request_id", "key_id", "team", "model", "provider", "status", "price_version"):
        assert got[name] == getattr(first, name)
    assert got["end_user"] == "alice"
    assert (got["cached_tokens"], got["cache_write_tokens"], got["reasoning_tokens"]) == (3, 2, 1)
    assert (got["streamed"], got["cut_short"], got["estimated"], got["cache_hit"]) == (True,) * 4
    assert got["latency_ms"] == 2**40
    assert got["cost_saved"] == D("0.000000000007") and rows[1]["cost_saved"] is None
    assert (got["prompt_tokens"], got["completion_tokens"]) == (first.prompt_tokens, first.completion_tokens)
    assert got["time"] == first.time and got["time"].tzinfo is not None
    assert [r["cost"] for r in rows[1:]] == costs
    assert all(type(r["cost"]) is Decimal for r in rows[1:] if r["cost"] is not None)
    assert rows[1]["key_id"] is None and rows[1]["end_user"] is None
    # The sum is exact too: a float sum of these would not be.
    report = await ledger.query("model")
    assert report.groups[0].cost == D("12345.678901234567") + D("0.3") + D("0.000125") + D("0.000000000001")


async def test_null_cost_is_unpriced_not_zero(db: Database) -> None:
    ledger = await started(db)
    ledger.record(row(1, model="priced", cost=D("0.5")))
    ledger.record(row(2, model="priced", cost=None))
    ledger.record(row(3, model="unpriced", cost=None))
    ledger.record(row(4, model="unpriced", cost=None))
    ledger.record(row(5, model="free", cost=D(0)))
    await ledger.aclose()
    groups = {g.group: g for g in (await ledger.query("model")).groups}
    assert (groups["priced"].cost, groups["priced"].unpriced, groups["priced"].requests) == (D("0.5"), 1, 2)
    assert (groups["unpriced"].cost, groups["unpriced"].unpriced) == (None, 2)
    assert (groups["free"].cost, groups["free"].unpriced) == (D(0), 0)
    total = (await ledger.query("model")).total
    assert (total.requests, total.cost, total.unpriced) == (5, D("0.5"), 3)
    assert [r["cost"] for r in await stored(db)] == [D("0.5"), None, None, None, D(0)]


async def test_sums_stay_exact_beyond_64_bit_pico_dollars(db: Database) -> None:
    # 2,000 requests of $9,999.999999999999 = $19,999,999.999999998: past 2**63 pico-dollars.
    ledger = await started(db)
    for n in range(2000):
        ledger.record(row(n, cost=D("9999.999999999999")))
    await ledger.aclose()
    assert (await ledger.query("key")).total.cost == D("9999.999999999999") * 2000


async def test_writes_in_batches(db: Database) -> None:
    """Each batch is one transaction, and its rows go in with at most two driver calls (on SQLite: one
    executemany of the 64-row statements, one of the rest), never one per row."""
    batches: list[int] = [0]
    statements: list[int] = []

    def count(_conn: object, _cursor: object, statement: str, params: Any, _ctx: object, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SPEND ("):
            rows = (len(params) if many else 1) * (statement.count("(?") or 1)
            batches[-1] += rows
            statements.append(rows)

    def commit(_conn: object) -> None:
        batches.append(0)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    event.listen(db.engine.sync_engine, "commit", commit)
    ledger = await started(db, batch_size=500)
    for n in range(1200):
        ledger.record(row(n))
    await ledger.flush()
    assert [b for b in batches if b] == [500, 500, 200]
    assert len(statements) <= 3 * 2 if db.dialect == "sqlite" else 3
    await ledger.aclose()


async def test_rows_arriving_within_max_delay_share_a_batch_and_are_written_without_flush(
    db: Database,
) -> None:
    ledger = await started(db, max_delay=1.0)
    ledger.record(row(1))
    await asyncio.sleep(0.05)
    ledger.record(row(2))
    await asyncio.sleep(0.02)
    assert await count_rows(db) == 0  # still gathering the batch
    for _ in range(250):
        if await count_rows(db) == 2:
            break
        await asyncio.sleep(0.02)
    assert await count_rows(db) == 2
    await ledger.aclose()


async def test_aclose_drains_thousands_of_queued_rows(db: Database) -> None:
    ledger = await started(db)
    for n in range(5000):
        ledger.record(row(n))
    assert ledger.pending == 5000
    await ledger.aclose()
    assert await count_rows(db) == 5000
    assert (ledger.written, ledger.dropped, ledger.pending) == (5000, 0, 0)
    assert sorted(r["request_id"] for r in await stored(db)) == sorted(f"req-{n}" for n in range(5000))
    await ledger.aclose()  # idempotent


async def test_aclose_writes_rows_recorded_before_start(db: Database) -> None:
    ledger = SqlLedger(db)
    ledger.record(row(1))
    await ledger.aclose()
    assert await count_rows(db) == 1


async def test_rows_after_close_or_past_the_queue_bound_are_counted_as_dropped(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = SqlLedger(db, max_queue=3)
    for n in range(5):
        ledger.record(row(n))
    assert ledger.dropped == 2
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # a flood of drops is logged once a second
    assert "queue is full" in caplog.records[0].getMessage()
    await ledger.aclose()
    ledger.record(row(9))
    assert (ledger.written, ledger.dropped) == (3, 3)
    assert await count_rows(db) == 3


async def test_a_row_the_database_refuses_does_not_lose_its_batch(db: Database) -> None:
    ledger = await started(db)
    ledger.record(row(1))
    ledger.record(row(2, cost=D("1e15")))  # beyond NUMERIC(20, 12) and int64 pico-dollars
    ledger.record(row(3))
    await ledger.aclose()
    assert sorted(r["request_id"] for r in await stored(db)) == ["req-1", "req-3"]
    assert (ledger.written, ledger.dropped) == (2, 1)


async def test_a_failing_database_is_retried_until_it_recovers(db: Database) -> None:
    ledger = await started(db, retry_delay=0.01)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE spend"))
    ledger.record(row(1))
    ledger.record(row(2))
    await asyncio.sleep(0.3)  # a few failed attempts
    async with db.engine.begin() as connection:
        await connection.run_sync(lambda sync: METADATA.create_all(sync, tables=[spend]))
    await asyncio.wait_for(ledger.flush(), 10)
    assert await count_rows(db) == 2
    assert ledger.dropped == 0
    await ledger.aclose()


async def test_aclose_gives_up_on_a_dead_database_and_counts_the_loss(db: Database) -> None:
    ledger = await started(db, retry_delay=0.01, close_attempts=2)
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE spend"))
    for n in range(3):
        ledger.record(row(n))
    await asyncio.wait_for(ledger.aclose(), 10)
    assert (ledger.written, ledger.dropped) == (0, 3)


@pytest.mark.parametrize("group_by", GROUP_BY)
async def test_groups_by_each_dimension(db: Database, group_by: GroupBy) -> None:
    ledger = await started(db)
    day2 = T0 + timedelta(days=1)
    first_row = {
        "key_id": "k1",
        "model": "m1",
        "provider": "p1",
        "user": "u1",
        "team": "t1",
        "customer": "c1",
    }
    ledger.record(row(1, **first_row, tags=("x1",), cost=D("1.5")))
    ledger.record(row(2, **first_row, tags=("x1",), cost=D("0.25")))
    ledger.record(
        row(3, key_id="k2", model="m2", provider="p2", user="u2", team="t2", customer="c2", time=day2)
    )
    ledger.record(
        row(3, key_id="k2", model="m2", provider="p2", user="u2", team="t2", customer="c2", time=day2)
    )
    ledger.record(
        row(4, key_id=None, model="m3", provider="p3", user=None, team=None, time=day2 + timedelta(days=1))
    )
    await ledger.aclose()
    report = await ledger.query(group_by)
    got = {g.group: (g.requests, g.prompt_tokens, g.completion_tokens, g.cost) for g in report.groups}
    first, second, third = {
        "key": ("k1", "k2", None),
        "model": ("m1", "m2", "m3"),
        "provider": ("p1", "p2", "p3"),
        "user": ("u1", "u2", None),
        "team": ("t1", "t2", None),
        "customer": ("c1", "c2", None),
        "tag": ("x1", None, None),
        "day": ("2026-03-01", "2026-03-02", "2026-03-03"),
    }[group_by]
    assert report.group_by == (group_by,)
    if group_by == "tag":  # only tagged requests are in a report by tag
        assert got == {first: (2, 20, 10, D("1.75"))}
        return
    assert got == {
        first: (2, 20, 10, D("1.75")),
        second: (2, 20, 10, D("0.00025")),
        third: (1, 10, 5, D("0.000125")),
    }
    assert (report.total.requests, report.total.prompt_tokens, report.total.cost) == (5, 50, D("1.750375"))
    if group_by == "day":
        assert [g.group for g in report.groups] == [first, second, third]
    else:
        assert report.groups[0].group == first  # the most expensive first


async def test_groups_by_two_dimensions_and_filters(db: Database) -> None:
    ledger = await started(db)
    ledger.record(row(1, team="red", model="m1", tags=("a", "b"), cost=D("1")))
    ledger.record(row(2, team="red", model="m2", tags=("a",), cost=D("2")))
    ledger.record(row(3, team="blue", model="m1", cost=D("4")))
    ledger.record(row(4, team="red", model="m1", cost=D("8"), customer="acme"))
    await ledger.aclose()
    report = await ledger.query(("team", "model"))
    assert [(g.values, g.cost) for g in report.groups] == [
        (("red", "m1"), D(9)),
        (("blue", "m1"), D(4)),
        (("red", "m2"), D(2)),
    ]
    by_tag = await ledger.query(("tag", "model"))
    assert {g.values: g.cost for g in by_tag.groups} == {
        ("a", "m1"): D(1),
        ("a", "m2"): D(2),
        ("b", "m1"): D(1),
    }
    tagged = await ledger.query("model", where={"tag": "a"})
    assert {g.group: g.requests for g in tagged.groups} == {"m1": 1, "m2": 1}
    red = await ledger.query("model", where={"team": "red", "customer": "acme"})
    assert [(g.group, g.cost) for g in red.groups] == [("m1", D(8))]


async def test_answered_refused_and_failed_are_counted_apart(db: Database) -> None:
    ledger = await started(db)
    ledger.record(row(1, cost=D("0.5"), cached_tokens=3, cache_write_tokens=2, reasoning_tokens=1))
    ledger.record(row(2, cost=D("0.25"), cache_hit=True, cost_saved=D("0.125")))
    for n, outcome in enumerate(("refused_budget", "refused_rate", "refused_auth", "failed", "failed")):
        ledger.record(
            row(10 + n, status=429, prompt_tokens=0, completion_tokens=0, cost=D(0), outcome=outcome)
        )
    ledger.record(row(20, cost=None))
    await ledger.aclose()
    total = (await ledger.query("key")).total
    assert (total.requests, total.refused_budget, total.refused_rate, total.refused_auth, total.failed) == (
        3,
        1,
        1,
        1,
        2,
    )
    assert (total.cached_tokens, total.cache_write_tokens, total.reasoning_tokens) == (3, 2, 1)
    assert (total.cost, total.cost_saved, total.unpriced) == (D("0.75"), D("0.125"), 1)


async def test_day_is_the_utc_day(db: Database) -> None:
    ledger = await started(db)
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC).astimezone(PLUS_5)  # 2026-03-02 04:30 at +05:00
    ledger.record(row(1, time=late))
    ledger.record(row(2, time=datetime(2026, 3, 2, 0, 30, tzinfo=UTC)))
    await ledger.aclose()
    assert [g.group for g in (await ledger.query("day")).groups] == ["2026-03-01", "2026-03-02"]


async def test_reports_cover_whole_utc_days_and_key_filters(db: Database) -> None:
    ledger = await started(db)
    for day in range(5):
        ledger.record(row(day, time=T0 + timedelta(days=day), key_id="k1" if day % 2 else "k2"))
    await ledger.aclose()

    async def requests(**window: Any) -> int:
        return (await ledger.query("model", **window)).total.requests

    assert await requests() == 5
    assert await requests(since=T0 + timedelta(days=1)) == 4
    assert await requests(until=T0 + timedelta(days=1)) == 2  # the day of `until` is included
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert await requests(until=midnight) == 1  # a day boundary is exclusive
    assert await requests(since=T0 + timedelta(days=1, hours=11), until=T0 + timedelta(days=3)) == 3
    report = await ledger.query("model", since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=4))
    assert (report.since, report.until) == (datetime(2026, 3, 1, tzinfo=UTC), midnight)
    # The same instant in another zone is the same instant.
    other_zone = (T0 + timedelta(days=1)).astimezone(PLUS_5)
    assert await requests(since=other_zone) == 4
    assert await requests(key_id="k1") == 2
    assert await requests(key_id="k1", since=T0 + timedelta(days=2)) == 1
    assert await requests(key_id="nobody") == 0
    empty = await ledger.query("key", key_id="nobody")
    assert (empty.groups, empty.total.cost) == ((), None)


async def test_flush_needs_a_running_writer_and_start_is_idempotent(db: Database) -> None:
    ledger = SqlLedger(db)
    with pytest.raises(RuntimeError, match="start"):
        await ledger.flush()
    await ledger.start()
    await ledger.start()
    ledger.record(row(1))
    await ledger.flush()
    assert await count_rows(db) == 1
    await ledger.aclose()
    await ledger.start()  # closed for good
    ledger.record(row(2))
    assert (ledger.written, ledger.dropped) == (1, 1)


async def test_naive_windows_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await SqlLedger(db).query("model", since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await SqlLedger(db).query("model", until=datetime(2026, 1, 1))


class _Orig(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("x")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (DataError("INSERT", {}, _Orig(None)), True),
        (IntegrityError("INSERT", {}, _Orig(None)), True),
        (DBAPIError("INSERT", {}, _Orig("22003")), True),  # numeric value out of range
        (DBAPIError("INSERT", {}, _Orig("23502")), True),  # not-null violation
        (OperationalError("INSERT", {}, _Orig("08006")), False),  # connection failure
        (DBAPIError("INSERT", {}, _Orig(None)), False),
        (StatementError("bind", "INSERT", {}, ValueError("x")), True),
        (SqlTimeoutError("pool exhausted"), False),
        (ConnectionResetError(), False),
        (OverflowError("int too large"), True),
    ],
)
def test_only_errors_about_the_rows_drop_rows(error: Exception, refused: bool) -> None:
    assert _refused(error) is refused
