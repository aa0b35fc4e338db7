"""`SqlSessionStore`: console sessions in the gateway's database, shared by every worker and replica."""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import RowMapping

from calcifer.domain.sessions import ConsoleSession, SessionPolicy
from calcifer.storage.database import Database
from calcifer.storage.schema import console_sessions as table


class SqlSessionStore:
    """The `SessionStore` on a `Database` opened by `open_database`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, session: ConsoleSession) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(
                table.insert().values(
                    digest=session.digest,
                    key_id=session.key_id,
                    who=session.who,
                    csrf=session.csrf,
                    created=session.created,
                    seen=session.seen,
                )
            )

    async def get(self, digest: str) -> ConsoleSession | None:
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(select(table).where(table.c.digest == digest))).mappings().first()
        return None if row is None else _session(row)

    async def touch(self, digest: str, seen: float) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(update(table).where(table.c.digest == digest).values(seen=seen))

    async def remove(self, digest: str) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(delete(table).where(table.c.digest == digest))

    async def remove_all(self, key_id: str | None) -> int:
        which = table.c.key_id.is_(None) if key_id is None else table.c.key_id == key_id
        async with self._db.engine.begin() as connection:
            return int((await connection.execute(delete(table).where(which))).rowcount)

    async def remove_stale(self, policy: SessionPolicy, now: float) -> int:
        stale = or_(table.c.seen < now - policy.idle, table.c.created < now - policy.lifetime)
        async with self._db.engine.begin() as connection:
            return int((await connection.execute(delete(table).where(stale))).rowcount)


def _session(row: RowMapping) -> ConsoleSession:
    return ConsoleSession(
        digest=row["digest"],
        key_id=row["key_id"],
        who=row["who"],
        csrf=row["csrf"],
        created=float(row["created"]),
        seen=float(row["seen"]),
    )
