"""Daily spend rollups: what the ledger writer adds to them for each batch, and the reports read
from them.

A batch of ledger rows is summed per (day, key, team, user, model, provider) into `spend_daily`, the
same plus the customer into `spend_daily_customers`, for each of its tags, plus the customer and the
tag into `spend_daily_tags`, per (day, team, model, provider) into `spend_daily_models`, the same per
block of 4 and of 16 days into `spend_blocks_models`, and per day and value of each dimension alone
into `spend_daily_each` (the last three summed from the other tables' sums, not from the rows again),
with one upsert per table, in the transaction that inserts the rows. The upserts go in a fixed order,
so two replicas writing at once never wait on each other in opposite orders. Reports sum the rollup
rows of the days asked for, from the narrowest table that has every dimension they group or filter by
(`rollup_for`), the whole blocks of their span and the days at its ends when that is
`spend_daily_models` and they do not group by day; they never read the ledger's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, cast, func, select, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from calcifer.domain.ledger import GroupBy, SpendGroup, SpendRecord
from calcifer.storage.schema import (
    BLOCK_DAYS,
    ROLLUP_COUNTS,
    ROLLUP_MONEY,
    ROLLUP_MONEY_COLUMNS,
    from_pico,
    spend_blocks_models,
    spend_daily,
    spend_daily_customers,
    spend_daily_each,
    spend_daily_models,
    spend_daily_tags,
    to_pico,
)

_EPOCH = date(1970, 1, 1)
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
    number = _day_number(day)
    return tuple(_day_text(number - number % days) for days in BLOCK_DAYS)


def _day_number(day: str) -> int:
    return (date.fromisoformat(day) - _EPOCH).days


def _day_text(number: int) -> str:
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
            (*key, *values[:counts], *divmod(values[counts], _SPLIT), *divmod(values[counts + 1], _SPLIT))
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
    """A table's upsert on SQLite, and the columns its parameters (and `sum_batch`'s rows) are, in
    order."""
    dimensions = _dimensions(table)
    columns = (*dimensions, *_FIELDS)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(dimensions)}) DO UPDATE SET "
        + ", ".join(f"{name} = {name} + excluded.{name}" for name in _FIELDS)
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
_COARSE = frozenset(_COLUMN[name] for name in ("day", "team", "model", "provider"))


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
    (dimension -> value), from `table` (default: the narrowest that answers it, `rollup_for`, and for
    `spend_daily_models` without grouping by day, its blocks and the days at their ends), and its
    parameters. Each row is the group's values, then `_FIELDS`' sums as integers."""
    names = tuple(sorted(where))
    parameters = {f"w_{name}": where[name] for name in names}
    if table is None:
        table = rollup_for((*group_by, *where))  # type: ignore[arg-type]
        if table is spend_daily_models and "day" not in (*group_by, *where):
            first = None if since is None else _day_number(since.strftime("%Y-%m-%d"))
            end = None if until is None else _day_number(until.strftime("%Y-%m-%d"))
            spans = _cover(first, end)
            if spans:
                for index, (_, low, high) in enumerate(spans):
                    if low is not None:
                        parameters[f"since{index}"] = _day_text(low)
                    if high is not None:
                        parameters[f"until{index}"] = _day_text(high)
                shape = tuple((days, low is not None, high is not None) for days, low, high in spans)
                return _blocks_statement(tuple(group_by), names, shape), parameters
    if since is not None:
        parameters["since"] = since.strftime("%Y-%m-%d")
    if until is not None:
        parameters["until"] = until.strftime("%Y-%m-%d")
    return _statement(table, tuple(group_by), names, since is not None, until is not None), parameters


def _cover(first: int | None, end: int | None) -> list[tuple[int, int | None, int | None]]:
    """The days [first, end) (numbers since 1970-01-01; None: unbounded) as a few spans of blocks:
    (block days, first day of the span's first block, of the block after its last). Blocks of the
    largest size where they fit, then of each smaller size, down to single days at the ends."""
    sizes = (1, *BLOCK_DAYS)
    spans: list[tuple[int, int | None, int | None]] = []
    for small, big in pairwise(sizes):
        if first is not None and end is not None and first >= end:
            return spans
        up = None if first is None else -(-first // big) * big
        down = None if end is None else end - end % big
        if up is not None and down is not None and up > down:  # no whole block of `big` days
            return [*spans, (small, first, end)]
        if first is not None and first != up:
            spans.append((small, first, up))
        if end is not None and down != end:
            spans.append((small, down, end))
        first, end = up, down
    if first is None or end is None or first < end:
        spans.append((sizes[-1], first, end))
    return spans


def _filtered(statement: Any, table: Table, column: dict[GroupBy, str], where: tuple[GroupBy, ...]) -> Any:
    for name in where:
        statement = statement.where(table.c[column[name]] == bindparam(f"w_{name}"))
    return statement


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
    statement = select(*groups, *_sums(table)).group_by(*groups)
    if table is spend_daily_each:
        statement = statement.where(table.c.dimension == dimension)
    if since:
        statement = statement.where(table.c.day >= bindparam("since"))
    if until:
        statement = statement.where(table.c.day < bindparam("until"))
    return _filtered(statement, table, column, where)


def _sums(table: Any) -> list[Any]:
    return [cast(func.sum(table.c[name]), BigInteger).label(name) for name in _FIELDS]


@lru_cache(maxsize=512)
def _blocks_statement(
    group_by: tuple[GroupBy, ...], where: tuple[GroupBy, ...], shape: tuple[tuple[int, bool, bool], ...]
) -> Any:
    """A report from `spend_daily_models`' days and `spend_blocks_models`' blocks, one span of
    `_cover`'s each (`shape`: its block days, whether it has a first and an end), summed together."""
    parts = []
    for index, (days, since, until) in enumerate(shape):
        table = spend_daily_models if days == 1 else spend_blocks_models
        part = select(
            *(table.c[_COLUMN[name]].label(f"g{n}") for n, name in enumerate(group_by)),
            *(table.c[name] for name in _FIELDS),
        )
        if days != 1:
            part = part.where(table.c.days == days)
        if since:
            part = part.where(table.c.day >= bindparam(f"since{index}"))
        if until:
            part = part.where(table.c.day < bindparam(f"until{index}"))
        parts.append(_filtered(part, table, _COLUMN, where))
    spans: Any = parts[0].subquery() if len(parts) == 1 else union_all(*parts).subquery()
    groups = [spans.c[f"g{n}"] for n in range(len(group_by))]
    return select(*groups, *_sums(spans)).group_by(*groups)


def group_of(row: Sequence[Any], dimensions: int) -> SpendGroup:
    """One report row (the statement's columns, in order: the groups, then `_FIELDS`) as a
    `SpendGroup`; unpacked by position (by name, it took three times as long)."""
    (
        requests,
        refused_budget,
        refused_rate,
        refused_auth,
        failed,
        prompt_tokens,
        completion_tokens,
        cached_tokens,
        cache_write_tokens,
        reasoning_tokens,
        priced,
        unpriced,
        _,  # cache hits
        cost_hi,
        cost_lo,
        saved_hi,
        saved_lo,
    ) = row[dimensions:]
    return SpendGroup(
        tuple(value or None for value in row[:dimensions]),
        requests,
        prompt_tokens,
        completion_tokens,
        _money(cost_hi, cost_lo) if priced else None,
        unpriced,
        refused_budget,
        refused_rate,
        refused_auth,
        failed,
        cached_tokens,
        cache_write_tokens,
        reasoning_tokens,
        _money(saved_hi, saved_lo),
    )


def _money(hi: int, lo: int) -> Decimal:
    pico = hi * _SPLIT + lo
    return from_pico(pico) if pico else _ZERO


_ZERO = Decimal(0)
