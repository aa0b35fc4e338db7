"""`SqlAuditLog`: every admin change as an append-only row (when, who, what, before and after), kept
when the thing it describes is deleted. Nothing here updates or deletes a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, select

from calcifer.storage.database import Database
from calcifer.storage.schema import audit_log


class SqlAuditLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append(
        self, actor: str, action: str, entity: str, entity_id: str, before: object, after: object
    ) -> None:
        """Record one change; `before`/`after` are JSON values, money as `orjson.Fragment`s (None: it did
        not exist). They are kept as the exact JSON text and read back as it."""
        values = {
            "time": datetime.now(UTC),
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": None if before is None else orjson.dumps(before).decode(),
            "after": None if after is None else orjson.dumps(after).decode(),
        }
        async with self._db.engine.begin() as connection:
            await connection.execute(insert(audit_log).values(**values))

    async def entries(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest entries first, optionally of one entity (kind, and id), older than `before`."""
        statement = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if entity is not None:
            statement = statement.where(audit_log.c.entity == entity)
        if entity_id is not None:
            statement = statement.where(audit_log.c.entity_id == entity_id)
        if before is not None:
            statement = statement.where(audit_log.c.id < before)
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [
            {
                "id": row["id"],
                "time": row["time"].isoformat().replace("+00:00", "Z"),
                "actor": row["actor"],
                "action": row["action"],
                "entity": row["entity"],
                "entity_id": row["entity_id"],
                "before": None if row["before"] is None else orjson.Fragment(row["before"]),
                "after": None if row["after"] is None else orjson.Fragment(row["after"]),
            }
            for row in rows
        ]
