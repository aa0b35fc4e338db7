"""Daily spend rollups: what the ledger writer adds to them for each batch (the reports that read them
are in `spend_reports.py`).

A batch of ledger rows is summed per (day, key, team, user, model, provider) into `spend_daily`, the
same plus the customer into `spend_daily_customers`, for each of its tags, plus the customer and the
tag into `spend_daily_tags`, per (day, team, model, provider) into `spend_daily_models`, the same per
block of 4 and of 16 days into `spend_blocks_models`, and per day and value of each dimension alone
into `spend_daily_each` (the last three summed from the other tables' sums, not from the rows again),
with one upsert per table, in the transaction that inserts the rows. The upserts go in a fixed order,
so two replicas writing at once never wait on each other in opposite orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from calcifer.domain.ledger import GroupBy, SpendRecord
from calcifer.storage.schema import (
    BLOCK_DAYS,
    ROLLUP_COUNTS,
    ROLLUP_MONEY,
    ROLLUP_MONEY_COLUMNS,
    spend_blocks_models,
    spend_daily,
    spend_daily_customers,
    spend_daily_each,
    spend_daily_models,
    spend_daily_tags,
    to_pico,
)

_EPOCH = date(1970, 1, 1)
SPLIT = 10**6  # money is kept as whole micro-dollars and the pico-dollars beyond them
_OUTCOME_COUNT = {
    "answered": "requests",
    "refused_budget": "refused_budget",
    "refused_rate": "refused_rate",
    "refused_auth": "refused_auth",
    "failed": "failed",
}
COLUMNS: dict[GroupBy, str] = {
    "key": "key_id",
    "team": "team",
    "user": "end_user",
    "customer": "customer",
    "tag": "tag",
    "model": "model",
    "provider": "provider",
    "day": "day",
}
_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens")
FIELDS = (*ROLLUP_COUNTS, *ROLLUP_MONEY_COLUMNS)
Sums = dict[str, Any]
_Key = tuple[str | int, ...]


def _add(sums: dict[_Key, Sums], key: _Key, row: SpendRecord) -> None:
    entry = sums.get(key)
    if entry is None:
        entry = sums[key] = dict.fromkeys(ROLLUP_COUNTS, 0) | dict.fromkeys(ROLLUP_MONEY, 0)
    entry[_OUTCOME_COUNT[row.outcome]] += 1
    for name in _TOKENS:
        entry[name] += getattr(row, name)
    if row.cost is None:
        entry["unpriced"] += 1
    else:
        entry["priced"] += 1
        entry["cost"] += to_pico(row.cost)
    if row.cache_hit:
        entry["cache_hits"] += 1
    if row.cost_saved is not None:
        entry["cost_saved"] += to_pico(row.cost_saved)


def _regroup(
    into: dict[_Key, Sums],
    sums: dict[_Key, Sums],
    keys: Callable[[_Key], Iterable[_Key]],
) -> dict[_Key, Sums]:
    """Add each entry of `sums` to `into` under each of `keys(its key)`."""
    for key, entry in sums.items():
        for coarse in keys(key):
            total = into.get(coarse)
            if total is None:
                into[coarse] = dict(entry)
            else:
                for name, value in entry.items():
                    total[name] += value
    return into


def _by_model(key: _Key) -> tuple[_Key, ...]:
    day, _, team, _, model, provider = key
    return ((day, team, model, provider),)


def _blocks(key: _Key) -> tuple[_Key, ...]:
    day, team, model, provider = key
    return tuple(
        (days, first, team, model, provider)
        for days, first in zip(BLOCK_DAYS, _first_days(str(day)), strict=True)
    )


@lru_cache(maxsize=64)
def _first_days(day: str) -> tuple[str, ...]:
    """The first day of each of the `BLOCK_DAYS` blocks that hold `day` (YYYY-MM-DD)."""
    number = day_number(day)
    return tuple(day_text(number - number % days) for days in BLOCK_DAYS)


def day_number(day: str) -> int:
    return (date.fromisoformat(day) - _EPOCH).days


def day_text(number: int) -> str:
    return (_EPOCH + timedelta(days=number)).isoformat()


def _each(key: _Key) -> tuple[_Key, ...]:
    day, key_id, team, user, model, provider = key
    return (
        ("key", key_id, day),
        ("team", team, day),
        ("user", user, day),
        ("model", model, day),
        ("provider", provider, day),
    )


def sum_batch(batch: Iterable[SpendRecord]) -> tuple[list[tuple[Any, ...]], ...]:
    """A batch's additions to `spend_daily`, `spend_daily_customers`, `spend_daily_tags`,
    `spend_daily_models`, `spend_blocks_models` and `spend_daily_each` (`_TABLES`), each in dimension
    order, as rows of each table's upsert's columns."""
    plain: dict[_Key, Sums] = {}
    customers: dict[_Key, Sums] = {}
    tagged: dict[_Key, Sums] = {}
    for row in batch:
        key = (
            row.time.astimezone(UTC).strftime("%Y-%m-%d"),
            row.key_id or "",
            row.team or "",
            row.user or "",
            row.model,
            row.provider,
        )
        _add(plain, key, row)
        with_customer = (*key, row.customer or "")
        _add(customers, with_customer, row)
        for tag in row.tags:
            _add(tagged, (*with_customer, tag), row)
    models = _regroup({}, plain, _by_model)
    return (
        _rows(plain),
        _rows(customers),
        _rows(tagged),
        _rows(models),
        _rows(_regroup({}, models, _blocks)),
        _rows(_one_at_a_time(plain, customers, tagged)),
    )


def _one_at_a_time(
    plain: dict[_Key, Sums],
    customers: dict[_Key, Sums],
    tagged: dict[_Key, Sums],
) -> dict[_Key, Sums]:
    each = _regroup({}, plain, _each)
    _regroup(each, customers, lambda key: (("customer", key[6], key[0]),))
    return _regroup(each, tagged, lambda key: (("tag", key[7], key[0]),))


def _rows(sums: dict[_Key, Sums]) -> list[tuple[Any, ...]]:
    """The upsert's rows in column order: the key's dimensions, the counts, each amount's two parts
    (an entry's values are `ROLLUP_COUNTS`' then `ROLLUP_MONEY`'s, in that order)."""
    rows = []
    counts = len(ROLLUP_COUNTS)
    for key in sorted(sums):
        values = list(sums[key].values())
        rows.append(
            (*key, *values[:counts], *divmod(values[counts], SPLIT), *divmod(values[counts + 1], SPLIT))
        )
    return rows


async def add_batch(connection: AsyncConnection, dialect: str, batch: Sequence[SpendRecord]) -> None:
    """Add a batch's sums to the rollups, in the caller's transaction."""
    for table, rows in zip(_TABLES, sum_batch(batch), strict=True):
        if not rows:
            continue
        sql, columns = _sqlite_upsert(table)
        if dialect == "sqlite":  # plain tuples to the driver: SQLAlchemy's work per row was most of it
            await connection.exec_driver_sql(sql, rows)
        else:
            await connection.execute(_upsert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def _dimensions(table: Table) -> list[str]:
    return [column.name for column in table.c if column.name != "id" and column.name not in FIELDS]


@lru_cache(maxsize=8)
def _upsert(table: Table) -> Any:
    """A table's upsert on PostgreSQL, built once (SQLAlchemy then reuses its compiled form)."""
    insert = postgresql.insert(table)
    return insert.on_conflict_do_update(
        index_elements=_dimensions(table),
        set_={name: table.c[name] + insert.excluded[name] for name in FIELDS},
    )


@lru_cache(maxsize=8)
def _sqlite_upsert(table: Table) -> tuple[str, tuple[str, ...]]:
    """A table's upsert on SQLite, and the columns its parameters (and `sum_batch`'s rows) are, in
    order."""
    dimensions = _dimensions(table)
    columns = (*dimensions, *FIELDS)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(dimensions)}) DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in FIELDS)
    )
    return sql, columns


_TABLES = (
    spend_daily,
    spend_daily_customers,
    spend_daily_tags,
    spend_daily_models,
    spend_blocks_models,
    spend_daily_each,
)
