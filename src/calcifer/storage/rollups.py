"""Daily spend rollups: what the ledger writer adds to them for each batch, and the reports read
from them.

A batch of ledger rows is summed per (day, key, team, user, model, provider) into `spend_daily`, the
same plus the customer into `spend_daily_customers`, and, for each of its tags, plus the customer and
the tag into `spend_daily_tags`, with one upsert per table, in the transaction that inserts the rows.
The upserts go in a fixed order, so two replicas writing at once never wait on each other in opposite
orders. Reports sum the rollup rows of the days asked for (from the narrowest table that has the
dimensions asked for); they never read the ledger's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from calcifer.domain.ledger import GroupBy, SpendGroup, SpendRecord
from calcifer.storage.schema import (
    ROLLUP_COUNTS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MONEY,
    ROLLUP_MONEY_COLUMNS,
    from_pico,
    spend_daily,
    spend_daily_customers,
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


def sum_batch(batch: Iterable[SpendRecord]) -> tuple[list[Sums], list[Sums], list[Sums]]:
    """A batch's additions to `spend_daily`, `spend_daily_customers` and `spend_daily_tags`, each in
    dimension order."""
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
    )


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
    plain, customers, tagged = sum_batch(batch)
    for table, rows in ((spend_daily, plain), (spend_daily_customers, customers), (spend_daily_tags, tagged)):
        if rows:
            await connection.execute(_upsert(table, dialect), rows)


def _upsert(table: Table, dialect: str) -> Any:
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    dimensions = [column.name for column in table.c if column.name != "id" and column.name not in _FIELDS]
    return insert.on_conflict_do_update(
        index_elements=dimensions,
        set_={name: table.c[name] + insert.excluded[name] for name in _FIELDS},
    )


def report_statement(
    group_by: Sequence[GroupBy],
    since: datetime | None,
    until: datetime | None,
    where: dict[str, str],
) -> Any:
    """The query that sums the rollups of the days in [since, until) by `group_by`, filtered by `where`
    (dimension -> value)."""
    table = spend_daily
    if "tag" in group_by or "tag" in where:
        table = spend_daily_tags
    elif "customer" in group_by or "customer" in where:
        table = spend_daily_customers
    groups = [table.c[_COLUMN[name]].label(f"g{index}") for index, name in enumerate(group_by)]
    sums = [func.sum(table.c[name]).label(name) for name in (*ROLLUP_COUNTS, *ROLLUP_MONEY_COLUMNS)]
    statement = select(*groups, *sums).group_by(*groups)
    if since is not None:
        statement = statement.where(table.c.day >= since.strftime("%Y-%m-%d"))
    if until is not None:
        statement = statement.where(table.c.day < until.strftime("%Y-%m-%d"))
    for name, value in where.items():
        statement = statement.where(table.c[_COLUMN[name]] == value)  # type: ignore[index]
    return statement


def group_of(values: RowMapping, dimensions: int) -> SpendGroup:
    """One report row as a `SpendGroup`."""
    counts = {name: int(values[name] or 0) for name in ROLLUP_COUNTS}
    money = {
        name: from_pico(int(values[name + "_hi"] or 0) * _SPLIT + int(values[name + "_lo"] or 0))
        for name in ROLLUP_MONEY
    }
    return SpendGroup(
        values=tuple(values[f"g{index}"] or None for index in range(dimensions)),
        requests=counts["requests"],
        prompt_tokens=counts["prompt_tokens"],
        completion_tokens=counts["completion_tokens"],
        cost=money["cost"] if counts["priced"] else None,
        unpriced=counts["unpriced"],
        refused_budget=counts["refused_budget"],
        refused_rate=counts["refused_rate"],
        refused_auth=counts["refused_auth"],
        failed=counts["failed"],
        cached_tokens=counts["cached_tokens"],
        cache_write_tokens=counts["cache_write_tokens"],
        reasoning_tokens=counts["reasoning_tokens"],
        cost_saved=money["cost_saved"],
    )
