"""`GET /v1/spend` by role over a real SQLite ledger: the master and admin keys see all, a team-admin key
its team, a key its own spend and (asked) its user's or team's, a customer-bound key its customer's;
a filter outside the caller's scope is a 403 in the OpenAI error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from tests.http.test_spend import MASTER, FakeAuth, assert_error, exact, record

from calcifer.http.spend import spend
from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger

D = Decimal
# Team red: keys r1 (alice) and r2 (bob, serving customer acme); team blue: key b1 (alice, serving acme).
ROWS = (
    ("r1", "red", "alice", None, "1"),
    ("r1", "red", "alice", None, "2"),
    ("r2", "red", "bob", "acme", "4"),
    ("b1", "blue", "alice", "acme", "8"),
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    db = await open_database(f"sqlite:///{tmp_path / 'spend.db'}")
    ledger = SqlLedger(db)
    for n, (key, team, user, customer, cost) in enumerate(ROWS, 1):
        ledger.record(record(n, key_id=key, team=team, user=user, customer=customer, cost=D(cost)))
    await ledger.aclose()
    app = Starlette(routes=[Route("/v1/spend", spend)])
    app.state.ledger = ledger
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=FakeAuth(app)), base_url="http://g"
    ) as http:
        yield http
    await db.aclose()


def key(key_id: str, **owners: str) -> dict[str, str]:
    return {"x-test-key": key_id, **{f"x-test-{name}": value for name, value in owners.items()}}


async def total(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> Decimal:
    cost: Decimal = exact(await client.get(f"/v1/spend?{query}", headers=headers))["total"]["cost"]
    return cost


async def test_the_master_and_admin_keys_see_all(client: httpx.AsyncClient) -> None:
    assert await total(client, MASTER) == await total(client, key("a1", role="admin")) == D(15)
    assert await total(client, key("a1", role="admin"), "team=blue") == D(8)


async def test_a_team_admin_sees_its_team_by_any_grouping_and_nothing_else(client: httpx.AsyncClient) -> None:
    lead = key("lead", role="team-admin", team="red")
    body = exact(await client.get("/v1/spend?group_by=key,user", headers=lead))
    assert {(g["key"], g["user"]): g["cost"] for g in body["data"]} == {("r1", "alice"): 3, ("r2", "bob"): 4}
    assert await total(client, lead, "user=alice") == D(3)  # alice's spend in red, not in blue
    assert await total(client, lead, "key_id=b1") is None  # another team's key: nothing of it
    assert_error(await client.get("/v1/spend?team=blue", headers=lead), 403, "team")
    assert_error(await client.get("/v1/spend?scope=all", headers=lead), 403, "scope")


async def test_a_key_sees_its_own_spend_and_asked_its_user_s_or_team_s(client: httpx.AsyncClient) -> None:
    mine = key("r1", team="red", user="alice")
    assert await total(client, mine) == D(3)
    assert await total(client, mine, "scope=user&group_by=team") == D(3)  # alice, inside red only
    assert await total(client, key("p1", user="alice"), "scope=user&group_by=team") == D(11)  # red, blue
    assert await total(client, mine, "scope=team&group_by=model") == D(7)
    for query, param in (
        ("scope=team&group_by=key", "group_by"),  # colleagues' keys are not its business
        ("scope=team&user=bob", "user"),
        ("scope=user&user=bob", "user"),
        ("key_id=r2", "key_id"),
        ("scope=all", "scope"),
        ("scope=customer", "scope"),
    ):
        assert_error(await client.get(f"/v1/spend?{query}", headers=mine), 403, param)
    assert_error(await client.get("/v1/spend?scope=user", headers=key("r9")), 403, "scope")
    assert_error(await client.get("/v1/spend?scope=everything", headers=mine), 400, "scope")
    assert_error(await client.get("/v1/spend?scope=key", headers=MASTER), 400, "scope")


async def test_a_customer_bound_key_sees_its_customer_inside_its_team(client: httpx.AsyncClient) -> None:
    assert await total(client, key("c0", customer="acme"), "scope=customer") == D(12)
    in_red = key("c1", customer="acme", team="red")
    assert await total(client, in_red, "scope=customer&group_by=day") == D(4)
    assert_error(await client.get("/v1/spend?scope=customer&group_by=user", headers=in_red), 403, "group_by")
    assert_error(await client.get("/v1/spend?scope=customer&team=blue", headers=in_red), 403, "team")
