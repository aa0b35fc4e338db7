"""Spend reports from the daily rollups: which rollup answers a report (`rollup_for`), the statement
that sums it over a span of days (`report_statement`: for `spend_daily_models` without grouping by day,
the whole 4- and 16-day blocks of `spend_blocks_models` and the days at the span's ends), and a result
row as a `SpendGroup` (`group_of`). What the ledger writer adds to the rollups is in `rollups.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, cast, func, select, union_all

from calcifer.domain.ledger import GroupBy, SpendGroup
from calcifer.storage.rollups import COLUMNS, FIELDS, SPLIT, day_number, day_text
from calcifer.storage.schema import (
    BLOCK_DAYS,
    from_pico,
    spend_blocks_models,
    spend_daily,
    spend_daily_customers,
    spend_daily_each,
    spend_daily_models,
    spend_daily_tags,
)

_COARSE = frozenset(COLUMNS[name] for name in ("day", "team", "model", "provider"))


def rollup_for(dimensions: Iterable[GroupBy]) -> Table:
    """The narrowest rollup that has every one of `dimensions`: one dimension besides the day reads
    `spend_daily_each`; a report grouped or filtered by key or user with another dimension reads the
    key-level table, by customer or tag the tables that have them."""
    columns = {COLUMNS[name] for name in dimensions}
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
    parameters. Each row is the group's values, then `FIELDS`' sums as integers."""
    names = tuple(sorted(where))
    parameters = {f"w_{name}": where[name] for name in names}
    if table is None:
        table = rollup_for((*group_by, *where))  # type: ignore[arg-type]
        if table is spend_daily_models and "day" not in (*group_by, *where):
            first = None if since is None else day_number(since.strftime("%Y-%m-%d"))
            end = None if until is None else day_number(until.strftime("%Y-%m-%d"))
            spans = _cover(first, end)
            if spans:
                for index, (_, low, high) in enumerate(spans):
                    if low is not None:
                        parameters[f"since{index}"] = day_text(low)
                    if high is not None:
                        parameters[f"until{index}"] = day_text(high)
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
    column = COLUMNS
    if table is spend_daily_each:  # the one dimension besides the day is `value`
        dimension = next(name for name in (*group_by, *where) if name != "day")
        column = {name: "day" if name == "day" else "value" for name in COLUMNS}
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
    return [cast(func.sum(table.c[name]), BigInteger).label(name) for name in FIELDS]


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
            *(table.c[COLUMNS[name]].label(f"g{n}") for n, name in enumerate(group_by)),
            *(table.c[name] for name in FIELDS),
        )
        if days != 1:
            part = part.where(table.c.days == days)
        if since:
            part = part.where(table.c.day >= bindparam(f"since{index}"))
        if until:
            part = part.where(table.c.day < bindparam(f"until{index}"))
        parts.append(_filtered(part, table, COLUMNS, where))
    spans: Any = parts[0].subquery() if len(parts) == 1 else union_all(*parts).subquery()
    groups = [spans.c[f"g{n}"] for n in range(len(group_by))]
    return select(*groups, *_sums(spans)).group_by(*groups)


def group_of(row: Sequence[Any], dimensions: int) -> SpendGroup:
    """One report row (the statement's columns, in order: the groups, then `FIELDS`) as a
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
    pico = hi * SPLIT + lo
    return from_pico(pico) if pico else _ZERO


_ZERO = Decimal(0)
