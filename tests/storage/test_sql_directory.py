"""`SqlDirectory` and `SqlAuditLog` on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from calcifer.domain.levels import Customer, Member, TagBudget, Team, User
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import Database
from calcifer.storage.directory import SqlDirectory
from calcifer.storage.schema import tag_budgets

NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def test_teams_users_members_and_customers_round_trip(db: Database) -> None:
    directory = SqlDirectory(db, ttl=0)
    team = Team("red", "Red", NOW, Decimal("100.000000000001"), "monthly", ("m",), 5, 6, {"a": [1]})
    assert await directory.create(team) and not await directory.create(team)
    await directory.create(User("ada", NOW, "Ada", "ada@example.com", Decimal("40"), "weekly"))
    await directory.create(Customer("acme", NOW, Decimal("1"), "daily", blocked=True))
    await directory.put_member(Member("red", "ada", Decimal("40")))
    await directory.put_member(Member("red", "ada", Decimal("30")))  # changes, never duplicates
    assert await directory.get("team", "red") == team
    assert [m.max_budget for m in await directory.members("red")] == [Decimal("30")]
    async with db.engine.begin() as connection:
        await connection.execute(
            tag_budgets.insert().values(tag="beta", max_budget=Decimal("5"), budget_period="total")
        )
    owners = await directory.owners("red", "ada", "acme", ("beta", "other"))
    assert owners.team == team and owners.user is not None and owners.user.email == "ada@example.com"
    assert owners.member == Member("red", "ada", Decimal("30"))
    assert owners.customer is not None and owners.customer.blocked
    assert owners.tags == (("beta", Decimal("5"), "total"),)
    await directory.replace(replace(team, name="Crimson"))
    assert [t.name for t in await directory.all("team")] == ["Crimson"]
    assert await directory.delete("user", "ada") and not await directory.delete("user", "ada")
    assert await directory.members("red") == []
    assert await directory.owners(None, None, None, ()) == (await directory.owners(None, None, None, ()))


async def test_creates_of_one_id_at_once_store_it_once(db: Database) -> None:
    directory = SqlDirectory(db, ttl=0)
    for item in (Team("red", "Red", NOW), User("ada", NOW), Customer("acme", NOW)):
        created = await asyncio.gather(*(directory.create(item) for _ in range(6)))
        assert sorted(created) == [False] * 5 + [True]
    assert [t.id for t in await directory.all("team")] == ["red"]


async def test_a_member_is_found_by_team_and_user(db: Database) -> None:
    directory = SqlDirectory(db, ttl=0)
    await directory.put_member(Member("red", "ada", Decimal("4")))
    await directory.put_member(Member("red", "bob"))
    await directory.put_member(Member("blue", "ada", Decimal("9")))
    assert await directory.member("red", "ada") == Member("red", "ada", Decimal("4"))
    assert await directory.member("blue", "ada") == Member("blue", "ada", Decimal("9"))
    assert await directory.member("red", "cy") is None and await directory.member("green", "ada") is None


async def test_tag_budgets_are_set_replaced_listed_and_deleted(db: Database) -> None:
    directory = SqlDirectory(db, ttl=60)
    assert (await directory.owners(None, None, None, ("beta",))).tags == ()
    await directory.put_tag_budget(TagBudget("beta", Decimal("5.000000000001"), "total"))
    await directory.put_tag_budget(TagBudget("alpha", Decimal("1")))
    assert (await directory.owners(None, None, None, ("beta",))).tags == (
        ("beta", Decimal("5.000000000001"), "total"),
    )
    await directory.put_tag_budget(TagBudget("beta", Decimal("2"), "daily"))  # replaced, never duplicated
    assert await directory.tag_budgets() == [
        TagBudget("alpha", Decimal("1")),
        TagBudget("beta", Decimal("2"), "daily"),
    ]
    assert await directory.tag_budget("beta") == TagBudget("beta", Decimal("2"), "daily")
    assert await directory.tag_budget("gamma") is None
    assert await directory.delete_tag_budget("beta") and not await directory.delete_tag_budget("beta")
    assert (await directory.owners(None, None, None, ("beta",))).tags == ()  # the change cleared the cache


async def test_owners_are_cached_until_a_change(db: Database) -> None:
    directory = SqlDirectory(db, ttl=60)
    assert (await directory.owners("red", None, None, ())).team is None
    await directory.create(Team("red", "Red", NOW))
    assert (await directory.owners("red", None, None, ())).team is not None  # the change cleared the cache
    assert await directory.delete("team", "red")
    assert not await directory.delete_member("red", "ada")


async def test_the_audit_log_keeps_exact_values_newest_first(db: Database) -> None:
    log = SqlAuditLog(db)
    budget = orjson.Fragment(b"0.000000000001")
    await log.append("master", "create", "team", "red", None, {"max_budget": budget})
    await log.append("key:k1", "delete", "team", "red", {"max_budget": budget}, None)
    await log.append("master", "create", "user", "ada", None, {})
    entries = await log.entries(entity="team", entity_id="red")
    assert [e["action"] for e in entries] == ["delete", "create"]
    assert orjson.dumps(entries[1]["after"]) == b'{"max_budget":0.000000000001}'
    assert entries[0]["actor"] == "key:k1" and entries[0]["after"] is None
    assert len(await log.entries(limit=1)) == 1
    assert [e["entity"] for e in await log.entries(before=entries[0]["id"])] == ["team"]
