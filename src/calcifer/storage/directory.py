"""`SqlDirectory`: teams, users, team members and customers on SQLite or PostgreSQL, and the cached
view of them the hot path reads (`owners`), refreshed at most every `ttl` seconds (at once after a
change through this replica)."""

from __future__ import annotations

import json
import time
from dataclasses import fields
from typing import Any, Literal

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from calcifer.domain.levels import Customer, Member, Owners, TagBudget, Team, User
from calcifer.storage.database import Database
from calcifer.storage.schema import customers, tag_budgets, team_members, teams, users

Kind = Literal["team", "user", "customer"]
Entity = Team | User | Customer
_TABLES: dict[Kind, Table] = {"team": teams, "user": users, "customer": customers}
_TYPES: dict[Kind, type[Entity]] = {"team": Team, "user": User, "customer": Customer}
_JSON = ("models", "metadata")
_CACHE_MAX = 100_000


def _row(item: object) -> dict[str, object]:
    values: dict[str, object] = {}
    for spec in fields(item):  # type: ignore[arg-type]
        value = getattr(item, spec.name)
        if spec.name == "models":
            value = json.dumps(list(value))
        elif spec.name == "metadata":
            value = json.dumps(dict(value), separators=(",", ":"))
        values[spec.name] = value
    return values


def _item(kind: type[Any], row: RowMapping) -> Any:
    values = {name: row[name] for name in row.keys()}  # noqa: SIM118 (a RowMapping)
    for name in _JSON:
        if name in values:
            values[name] = json.loads(values[name])
    if "models" in values:
        values["models"] = tuple(values["models"])
    if "blocked" in values:
        values["blocked"] = bool(values["blocked"])
    return kind(**values)


class SqlDirectory:
    """The `Directory` port, and the store the admin API changes."""

    def __init__(self, database: Database, *, ttl: float = 5.0) -> None:
        self._db = database
        self._ttl = ttl
        self._cache: dict[tuple[object, ...], tuple[float, Owners]] = {}

    def forget(self) -> None:
        """Drop what is cached (after a change through this replica)."""
        self._cache.clear()

    async def create(self, item: Entity) -> bool:
        """Store a new team, user or customer; False when one with its id exists (the insert itself
        decides, so two creates of one id at once give one True and one False)."""
        table = _TABLES[_kind(item)]
        try:
            async with self._db.engine.begin() as connection:
                await connection.execute(insert(table).values(**_row(item)))
        except IntegrityError:
            return False
        self.forget()
        return True

    async def replace(self, item: Entity) -> None:
        table = _TABLES[_kind(item)]
        async with self._db.engine.begin() as connection:
            await connection.execute(update(table).where(table.c.id == item.id).values(**_row(item)))
        self.forget()

    async def get(self, kind: Kind, item_id: str) -> Any:
        table = _TABLES[kind]
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(select(table).where(table.c.id == item_id))).mappings().first()
        return None if row is None else _item(_TYPES[kind], row)

    async def all(self, kind: Kind) -> list[Any]:
        table = _TABLES[kind]
        async with self._db.engine.connect() as connection:
            rows = (
                await connection.execute(select(table).order_by(table.c.created_at, table.c.id))
            ).mappings()
            return [_item(_TYPES[kind], row) for row in rows.all()]

    async def delete(self, kind: Kind, item_id: str) -> bool:
        table = _TABLES[kind]
        async with self._db.engine.begin() as connection:
            gone = await connection.execute(delete(table).where(table.c.id == item_id))
            if kind == "team":
                await connection.execute(delete(team_members).where(team_members.c.team_id == item_id))
            elif kind == "user":
                await connection.execute(delete(team_members).where(team_members.c.user_id == item_id))
        self.forget()
        return gone.rowcount > 0

    async def members(self, team_id: str) -> list[Member]:
        statement = (
            select(team_members).where(team_members.c.team_id == team_id).order_by(team_members.c.user_id)
        )
        async with self._db.engine.connect() as connection:
            return [_item(Member, row) for row in (await connection.execute(statement)).mappings().all()]

    async def member(self, team_id: str, user_id: str) -> Member | None:
        statement = select(team_members).where(
            (team_members.c.team_id == team_id) & (team_members.c.user_id == user_id)
        )
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else _item(Member, row)

    async def put_member(self, member: Member) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(
                delete(team_members).where(
                    (team_members.c.team_id == member.team_id) & (team_members.c.user_id == member.user_id)
                )
            )
            await connection.execute(insert(team_members).values(**_row(member)))
        self.forget()

    async def delete_member(self, team_id: str, user_id: str) -> bool:
        async with self._db.engine.begin() as connection:
            gone = await connection.execute(
                delete(team_members).where(
                    (team_members.c.team_id == team_id) & (team_members.c.user_id == user_id)
                )
            )
        self.forget()
        return gone.rowcount > 0

    async def tag_budgets(self) -> list[TagBudget]:
        async with self._db.engine.connect() as connection:
            rows = await connection.execute(select(tag_budgets).order_by(tag_budgets.c.tag))
            return [_item(TagBudget, row) for row in rows.mappings().all()]

    async def tag_budget(self, tag: str) -> TagBudget | None:
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(select(tag_budgets).where(tag_budgets.c.tag == tag))).mappings()
            found = row.first()
        return None if found is None else _item(TagBudget, found)

    async def put_tag_budget(self, budget: TagBudget) -> None:
        """Set a tag's budget (created, or replaced whole)."""
        async with self._db.engine.begin() as connection:
            await connection.execute(delete(tag_budgets).where(tag_budgets.c.tag == budget.tag))
            await connection.execute(insert(tag_budgets).values(**_row(budget)))
        self.forget()

    async def delete_tag_budget(self, tag: str) -> bool:
        async with self._db.engine.begin() as connection:
            gone = await connection.execute(delete(tag_budgets).where(tag_budgets.c.tag == tag))
        self.forget()
        return gone.rowcount > 0

    async def owners(
        self, team_id: str | None, user_id: str | None, customer: str | None, tags: tuple[str, ...]
    ) -> Owners:
        cache_key = (team_id, user_id, customer, tags)
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._owners(team_id, user_id, customer, tags)
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        self._cache[cache_key] = (now + self._ttl, found)
        return found

    async def _owners(
        self, team_id: str | None, user_id: str | None, customer: str | None, tags: tuple[str, ...]
    ) -> Owners:
        team = await self.get("team", team_id) if team_id else None
        user = await self.get("user", user_id) if user_id else None
        member = await self.member(team_id, user_id) if team_id and user_id else None
        row = await self.get("customer", customer) if customer else None
        budgets: list[Any] = []
        if tags:
            async with self._db.engine.connect() as connection:
                statement = select(tag_budgets).where(tag_budgets.c.tag.in_(tags))
                for found in (await connection.execute(statement)).mappings().all():
                    budgets.append((found["tag"], found["max_budget"], found["budget_period"]))
        return Owners(team, user, member, row, tuple(sorted(budgets)))


def _kind(item: Entity) -> Kind:
    if isinstance(item, Team):
        return "team"
    return "user" if isinstance(item, User) else "customer"
