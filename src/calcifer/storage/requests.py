"""`SqlRequestLog`: the ledger's rows one by one (the per-request log), on SQLite or PostgreSQL.

Newest first by ledger id, keyset-paginated (`id < before`), so every page is an index range scan
whatever its depth; the time range uses the ledger's time index.
"""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import RowMapping

from calcifer.domain.ledger import SpendRecord
from calcifer.domain.requests import LoggedRequest, RequestFilter, RequestPage
from calcifer.storage.database import Database
from calcifer.storage.schema import spend

_EQUAL = {
    "key_id": spend.c.key_id,
    "team": spend.c.team,
    "user": spend.c.end_user,
    "customer": spend.c.customer,
    "model": spend.c.model,
    "provider": spend.c.provider,
    "status": spend.c.status,
    "streamed": spend.c.streamed,
    "cut_short": spend.c.cut_short,
    "cache_hit": spend.c.cache_hit,
    "outcome": spend.c.outcome,
}


class SqlRequestLog:
    """The `RequestLog` on a `Database` opened by `open_database` (the ledger's)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def page(self, filters: RequestFilter, before: int | None, limit: int) -> RequestPage:
        statement = _select().where(*_conditions(filters))
        if before is not None:
            statement = statement.where(spend.c.id < before)
        statement = statement.order_by(spend.c.id.desc()).limit(limit + 1)
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        found = tuple(_logged(row._mapping) for row in rows[:limit])
        more = len(rows) > limit
        return RequestPage(found, found[-1].id if more else None)

    async def find(self, request_id: str) -> LoggedRequest | None:
        statement = _select().where(spend.c.request_id == request_id).order_by(spend.c.id.desc()).limit(1)
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else _logged(row._mapping)


def _select() -> Select[tuple[object, ...]]:
    return select(*spend.columns)


def _conditions(filters: RequestFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for name, column in _EQUAL.items():
        value = getattr(filters, name)
        if value is not None:
            conditions.append(column == value)
    if filters.status_class is not None:
        low = filters.status_class * 100
        conditions += [spend.c.status >= low, spend.c.status < low + 100]
    if filters.since is not None:
        conditions.append(spend.c.time >= filters.since)
    if filters.until is not None:
        conditions.append(spend.c.time < filters.until)
    return conditions


def _logged(values: RowMapping) -> LoggedRequest:
    return LoggedRequest(
        id=int(values["id"]),
        record=SpendRecord(
            time=values["time"],
            request_id=values["request_id"],
            key_id=values["key_id"],
            user=values["end_user"],
            team=values["team"],
            model=values["model"],
            provider=values["provider"],
            status=int(values["status"]),
            prompt_tokens=int(values["prompt_tokens"]),
            completion_tokens=int(values["completion_tokens"]),
            cached_tokens=int(values["cached_tokens"]),
            cache_write_tokens=int(values["cache_write_tokens"]),
            reasoning_tokens=int(values["reasoning_tokens"]),
            cost=values["cost"],
            price_version=values["price_version"],
            latency_ms=int(values["latency_ms"]),
            streamed=bool(values["streamed"]),
            cut_short=bool(values["cut_short"]),
            estimated=bool(values["estimated"]),
            cache_hit=bool(values["cache_hit"]),
            cost_saved=values["cost_saved"],
            customer=values["customer"],
            tags=tuple(json.loads(values["tags"])) if values["tags"] else (),
            outcome=values["outcome"],
            attempts=values["attempts"],
            deployments=values["deployments"] or "",
            ttfb_ms=values["ttfb_ms"],
        ),
    )
