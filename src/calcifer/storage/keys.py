"""`SqlKeyStore`: virtual keys on SQLite or PostgreSQL. Only secret digests are stored."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from calcifer.domain.keys import KeyChanges, KeyRole, VirtualKey
from calcifer.domain.limits import BudgetPeriod
from calcifer.storage.database import Database
from calcifer.storage.schema import virtual_keys


class SqlKeyStore:
    """The `KeyStore` on a `Database` opened by `open_database`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, key: VirtualKey) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(virtual_keys.insert().values(id=key.id, **_values(key)))

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one(virtual_keys.c.id == key_id)

    async def get_by_secret_hash(self, secret_hash: str) -> VirtualKey | None:
        return await self._one(virtual_keys.c.secret_hash == secret_hash)

    async def list_keys(self, include_revoked: bool = False) -> tuple[VirtualKey, ...]:
        statement = select(virtual_keys).order_by(virtual_keys.c.created_at, virtual_keys.c.id)
        if not include_revoked:
            statement = statement.where(virtual_keys.c.revoked.is_(False))
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return tuple(_key(row) for row in rows)

    async def update(self, key_id: str, changes: KeyChanges) -> VirtualKey | None:
        async with self._db.engine.begin() as connection:
            statement = select(virtual_keys).where(virtual_keys.c.id == key_id)
            if self._db.dialect == "postgresql":
                statement = statement.with_for_update()
            row = (await connection.execute(statement)).mappings().first()
            if row is None:
                return None
            changed = changes.apply(_key(row))
            await connection.execute(
                update(virtual_keys).where(virtual_keys.c.id == key_id).values(**_values(changed))
            )
        return changed

    async def revoke(self, key_id: str) -> bool:
        async with self._db.engine.begin() as connection:
            result = await connection.execute(
                update(virtual_keys).where(virtual_keys.c.id == key_id).values(revoked=True)
            )
        return result.rowcount > 0

    async def _one(self, condition: Any) -> VirtualKey | None:
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(select(virtual_keys).where(condition))).mappings().first()
        return None if row is None else _key(row)


def _values(key: VirtualKey) -> dict[str, object]:
    return {
        "name": key.name,
        "secret_hash": key.secret_hash,
        "max_budget": key.max_budget,
        "budget_period": key.budget_period,
        "models": json.dumps(list(key.models)),
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "metadata": json.dumps(dict(key.metadata), separators=(",", ":")),
        "created_at": key.created_at,
        "revoked": key.revoked,
        "user_id": key.user_id,
        "team_id": key.team_id,
        "role": key.role,
    }


def _key(row: RowMapping) -> VirtualKey:
    return VirtualKey(
        id=row["id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        max_budget=row["max_budget"],
        budget_period=cast(BudgetPeriod, row["budget_period"]),
        models=tuple(json.loads(row["models"])),
        rpm_limit=row["rpm_limit"],
        tpm_limit=row["tpm_limit"],
        metadata=json.loads(row["metadata"]),
        revoked=bool(row["revoked"]),
        user_id=row["user_id"],
        team_id=row["team_id"],
        role=cast(KeyRole | None, row["role"]),
    )
