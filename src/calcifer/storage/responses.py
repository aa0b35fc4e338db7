"""`SqlResponseStore`: the Responses API's stored answers on SQLite or PostgreSQL.

Items and bodies are JSON text. Numbers with a fraction are read back as the exact text that was
written (an `orjson.Fragment`), so a stored `usage.cost` is returned digit for digit. A chain of
`previous_response_id` links is read in one recursive query. Expired rows are never returned, and are
deleted by the writes at most every `purge_every` seconds.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, literal, select
from sqlalchemy.engine import RowMapping

from calcifer.domain.types import JSONObject, StoredResponse
from calcifer.storage.database import Database
from calcifer.storage.schema import responses

_MAX_CHAIN = 10_000  # links followed back at most (a chain is acyclic; this only bounds a bad one)


class SqlResponseStore:
    """The `ResponseStore` on a `Database` opened by `open_database`."""

    def __init__(self, database: Database, *, purge_every: float = 600.0) -> None:
        self._db = database
        self._purge_every = purge_every
        self._purged = 0.0  # monotonic time of the last purge of expired rows

    async def put(self, response: StoredResponse) -> None:
        values = {
            "id": response.id,
            "created_at": response.created_at,
            "expires_at": response.expires_at,
            "key_id": response.key_id,
            "model": response.model,
            "provider": response.provider,
            "previous_id": response.previous_id,
            "input_items": orjson.dumps(list(response.input_items)).decode(),
            "body": orjson.dumps(response.body).decode(),
        }
        async with self._db.engine.begin() as connection:
            await connection.execute(responses.insert().values(**values))
            if time.monotonic() - self._purged >= self._purge_every:
                self._purged = time.monotonic()
                await connection.execute(
                    delete(responses).where(responses.c.expires_at <= response.created_at)
                )

    async def get(self, response_id: str, now: datetime) -> StoredResponse | None:
        statement = select(responses).where(responses.c.id == response_id, responses.c.expires_at > now)
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else _stored(row)

    async def chain(self, response_id: str, now: datetime) -> tuple[StoredResponse, ...]:
        links = (
            select(responses.c.id, responses.c.previous_id, literal(0).label("depth"))
            .where(responses.c.id == response_id, responses.c.expires_at > now)
            .cte("links", recursive=True)
        )
        links = links.union_all(
            select(responses.c.id, responses.c.previous_id, (links.c.depth + 1).label("depth")).where(
                responses.c.id == links.c.previous_id,
                responses.c.expires_at > now,
                links.c.depth < _MAX_CHAIN,
            )
        )
        statement = select(responses).join(links, responses.c.id == links.c.id).order_by(links.c.depth.desc())
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return tuple(_stored(row) for row in rows)

    async def delete(self, response_id: str) -> bool:
        async with self._db.engine.begin() as connection:
            result = await connection.execute(delete(responses).where(responses.c.id == response_id))
        return result.rowcount > 0


def _json(text: str) -> Any:
    return json.loads(text, parse_float=orjson.Fragment)


def _stored(row: RowMapping) -> StoredResponse:
    body: JSONObject = _json(row["body"])
    return StoredResponse(
        id=row["id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        key_id=row["key_id"],
        model=row["model"],
        provider=row["provider"],
        body=body,
        previous_id=row["previous_id"],
        input_items=tuple(_json(row["input_items"])),
    )
