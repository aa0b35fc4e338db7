"""Daily spend rollups: what the ledger writer adds to them for each batch, and the reports read
from them.

A batch of ledger rows is summed per (day, key, team, user, model, provider) into `spend_daily`, the
same plus the customer into `spend_daily_customers`, for each of its tags, plus the customer and the
tag into `spend_daily_tags`, per (day, team, model, provider) into `spend_daily_models`, and per day
and value of each dimension alone into `spend_daily_each` (these two summed from the other tables'
sums, not from the rows again), with one upsert per table, in the transaction that inserts the rows.
The upserts go in a fixed order, so two replicas writing at once never wait on each other in opposite
orders. Reports sum the rollup rows of the days asked for, from the narrowest table that has every
dimension they group or filter by (`rollup_for`); they never read the ledger's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from calcifer.domain.ledger import GroupBy, SpendGroup, SpendRecord
from calcifer.storage.schema import (
    MODEL_DIMENSIONS,
    ROLLUP_COUNTS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MONEY,
    ROLLUP_MONEY_COLUMNS,
    from_pico,
    spend_daily,
    spend_daily_customers,
    spend_daily_each,
    spend_daily_models,
    spend_daily_tags,
    to_pico,
)

_SPLIT = 10**6  # money is kept as whole micro-dollars and the pico-dollars beyond them
_OUTCOME_COUNT = {
    "answered": "requests",
    "refused_budget": "refused_budget",
    "refused_rate": "refused_rate",
    "refused_auth": "refused_auth",
    "failed": "failed",
}
_COLUMN: dict[GroupBy, str] = {
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
_FIELDS = (*ROLLUP_COUNTS, *ROLLUP_MONEY_COLUMNS)
Sums = dict[str, Any]


def _add(sums: dict[tuple[str, ...], Sums], key: tuple[str, ...], row: SpendRecord) -> None:
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
    into: dict[tuple[str, ...], Sums],
    sums: dict[tuple[str, ...], Sums],
    keys: Callable[[tuple[str, ...]], Iterable[tuple[str, ...]]],
) -> dict[tuple[str, ...], Sums]:
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


def _by_model(key: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    day, _, team, _, model, provider = key
    return ((day, team, model, provider),)


def _each(key: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    day, key_id, team, user, model, provider = key
    return (
        ("key", key_id, day),
        ("team", team, day),
        ("user", user, day),
        ("model", model, day),
        ("provider", provider, day),
    )


def sum_batch(batch: Iterable[SpendRecord]) -> tuple[list[Sums], ...]:
    """A batch's additions to `spend_daily`, `spend_daily_customers`, `spend_daily_tags`,
    `spend_daily_models` and `spend_daily_each`, each in dimension order."""
    plain: dict[tuple[str, ...], Sums] = {}
    customers: dict[tuple[str, ...], Sums] = {}
    tagged: dict[tuple[str, ...], Sums] = {}
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
    return (
        _rows(plain, ROLLUP_DIMENSIONS),
        _rows(customers, (*ROLLUP_DIMENSIONS, "customer")),
        _rows(tagged, (*ROLLUP_DIMENSIONS, "customer", "tag")),
        _rows(_regroup({}, plain, _by_model), MODEL_DIMENSIONS),
        _rows(_one_at_a_time(plain, customers, tagged), _EACH),
    )


def _one_at_a_time(
    plain: dict[tuple[str, ...], Sums],
    customers: dict[tuple[str, ...], Sums],
    tagged: dict[tuple[str, ...], Sums],
) -> dict[tuple[str, ...], Sums]:
    each = _regroup({}, plain, _each)
    _regroup(each, customers, lambda key: (("customer", key[6], key[0]),))
    return _regroup(each, tagged, lambda key: (("tag", key[7], key[0]),))


def _rows(sums: dict[tuple[str, ...], Sums], dimensions: Sequence[str]) -> list[Sums]:
    rows = []
    for key in sorted(sums):
        row: Sums = dict(zip(dimensions, key, strict=True)) | sums[key]
        for name in ROLLUP_MONEY:
            row[name + "_hi"], row[name + "_lo"] = divmod(row.pop(name), _SPLIT)
        rows.append(row)
    return rows


async def add_batch(connection: AsyncConnection, dialect: str, batch: Sequence[SpendRecord]) -> None:
    """Add a batch's sums to the rollups, in the caller's transaction."""
    for table, rows in zip(_TABLES, sum_batch(batch), strict=True):
        if not rows:
            continue
        if dialect == "sqlite":  # plain tuples to the driver: SQLAlchemy's work per row was most of it
            sql, columns = _sqlite_upsert(table)
            await connection.exec_driver_sql(sql, [tuple(map(row.__getitem__, columns)) for row in rows])
        else:
            await connection.execute(_upsert(table), rows)


def _dimensions(table: Table) -> list[str]:
    return [column.name for column in table.c if column.name != "id" and column.name not in _FIELDS]


@lru_cache(maxsize=8)
def _upsert(table: Table) -> Any:
    """A table's upsert on PostgreSQL, built once (SQLAlchemy then reuses its compiled form)."""
    insert = postgresql.insert(table)
    return insert.on_conflict_do_update(
        index_elements=_dimensions(table),
        set_={name: table.c[name] + insert.excluded[name] for name in _FIELDS},
    )


@lru_cache(maxsize=8)
def _sqlite_upsert(table: Table) -> tuple[str, tuple[str, ...]]:
    """A table's upsert on SQLite, and the columns its parameters are, in order."""
    dimensions = _dimensions(table)
    columns = (*dimensions, *_FIELDS)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(dimensions)}) DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in _FIELDS)
    )
    return sql, columns


_TABLES = (spend_daily, spend_daily_customers, spend_daily_tags, spend_daily_models, spend_daily_each)
_COARSE = frozenset(_COLUMN[name] for name in ("day", "team", "model", "provider"))
_EACH = ("dimension", "value", "day")


def rollup_for(dimensions: Iterable[GroupBy]) -> Table:
    """The narrowest rollup that has every one of `dimensions`: one dimension besides the day reads
    `spend_daily_each`; a report grouped or filtered by key or user with another dimension reads the
    key-level table, by customer or tag the tables that have them."""
    columns = {_COLUMN[name] for name in dimensions}
    if len(columns - {"day"}) == 1:
        return spend_daily_each
    if "tag" in columns:
        return spend_daily_tags
    if "customer" in columns:
        return spend_daily_customers
    return spend_daily_models if columns <= _COARSE else spend_daily


def report_statement(
    group_by: Sequence[GroupBy],
    since: datetime | None,
    until: datetime | None,
    where: dict[str, str],
    table: Table | None = None,
) -> tuple[Any, dict[str, str]]:
    """The query that sums the rollups of the days in [since, until) by `group_by`, filtered by `where`
    (dimension -> value), from `table` (default: the narrowest that answers it, `rollup_for`), and its
    parameters. Each row is the group's values, then `_FIELDS`' sums as integers."""
    if table is None:
        table = rollup_for((*group_by, *where))  # type: ignore[arg-type]
    names = tuple(sorted(where))
    parameters = {f"w_{name}": where[name] for name in names}
    if since is not None:
        parameters["since"] = since.strftime("%Y-%m-%d")
    if until is not None:
        parameters["until"] = until.strftime("%Y-%m-%d")
    return _statement(table, tuple(group_by), names, since is not None, until is not None), parameters


@lru_cache(maxsize=512)
def _statement(
    table: Table, group_by: tuple[GroupBy, ...], where: tuple[GroupBy, ...], since: bool, until: bool
) -> Any:
    """A report's statement, built once per shape (SQLAlchemy then reuses its compiled form). The sums
    are cast to BIGINT: PostgreSQL's SUM of a BIGINT is a NUMERIC, which the driver would hand over as
    a Decimal to convert back."""
    column = _COLUMN
    if table is spend_daily_each:  # the one dimension besides the day is `value`
        dimension = next(name for name in (*group_by, *where) if name != "day")
        column = {name: "day" if name == "day" else "value" for name in _COLUMN}
    groups = [table.c[column[name]].label(f"g{index}") for index, name in enumerate(group_by)]
    sums = [cast(func.sum(table.c[name]), BigInteger).label(name) for name in _FIELDS]
    statement = select(*groups, *sums).group_by(*groups)
    if table is spend_daily_each:
        statement = statement.where(table.c.dimension == dimension)
    if since:
        statement = statement.where(table.c.day >= bindparam("since"))
    if until:
        statement = statement.where(table.c.day < bindparam("until"))
    for name in where:
        statement = statement.where(table.c[column[name]] == bindparam(f"w_{name}"))
    return statement


def group_of(row: Sequence[Any], dimensions: int) -> SpendGroup:
    """One report row (the statement's columns, in order) as a `SpendGroup`."""
    sums = dict(zip(_FIELDS, row[dimensions:], strict=True))
    return SpendGroup(
        values=tuple(value or None for value in row[:dimensions]),
        requests=sums["requests"],
        prompt_tokens=sums["prompt_tokens"],
        completion_tokens=sums["completion_tokens"],
        cost=_money(sums, "cost") if sums["priced"] else None,
        unpriced=sums["unpriced"],
        refused_budget=sums["refused_budget"],
        refused_rate=sums["refused_rate"],
        refused_auth=sums["refused_auth"],
        failed=sums["failed"],
        cached_tokens=sums["cached_tokens"],
        cache_write_tokens=sums["cache_write_tokens"],
        reasoning_tokens=sums["reasoning_tokens"],
        cost_saved=_money(sums, "cost_saved"),
    )


def _money(sums: Sums, name: str) -> Decimal:
    pico = sums[name + "_hi"] * _SPLIT + sums[name + "_lo"]
    return from_pico(pico) if pico else _ZERO


_ZERO = Decimal(0)
