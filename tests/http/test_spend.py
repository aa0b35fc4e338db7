"""`GET /v1/spend` over a real SQLite ledger: who sees what, exact costs, and 4xx for bad parameters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calcifer.domain.keys import VirtualKey
from calcifer.domain.ledger import SpendRecord
from calcifer.http.auth import IDENTITY_KEY, Identity
from calcifer.http.spend import IS_MASTER, spend
from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger

D = Decimal
NOW = datetime.now(UTC).replace(microsecond=0)


class FakeAuth:
    """Stands in for the gateway's authentication: sets the scope values `spend` reads from headers
    (`x-test-key` names the caller's key; `x-test-team`, `-user`, `-role`, `-customer` describe it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        if b"x-test-master" in headers:
            scope[IS_MASTER] = True
        if b"x-test-key" in headers:
            scope[IDENTITY_KEY] = Identity(is_master=False, key=caller(headers))
        await self.app(scope, receive, send)


def caller(headers: dict[bytes, bytes]) -> VirtualKey:
    def text(name: str) -> str | None:
        value = headers.get(b"x-test-" + name.encode())
        return None if value is None else value.decode()

    customer = text("customer")
    role: Any = text("role")
    return VirtualKey(
        id=str(text("key")),
        name="caller",
        secret_hash="0" * 64,
        created_at=NOW,
        team_id=text("team"),
        user_id=text("user"),
        role=role,
        metadata={"customer": customer} if customer else {},
    )


def record(n: int, **fields: Any) -> SpendRecord:
    base = SpendRecord(
        time=NOW - timedelta(hours=n),
        request_id=f"r{n}",
        key_id="key_a",
        user="alice",
        team=None,
        model="gpt-4o",
        provider="openai",
        status=200,
        prompt_tokens=100,
        completion_tokens=20,
        cost=D("0.000000000001"),
    )
    return replace(base, **fields)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    db = await open_database(f"sqlite:///{tmp_path / 'spend.db'}")
    ledger = SqlLedger(db)
    ledger.record(record(1))
    ledger.record(record(2, cost=D("12345.678901234567")))
    ledger.record(record(3, key_id="key_b", model="claude", provider="anthropic", cost=None))
    ledger.record(record(24 * 30, key_id="key_b", cost=D("1")))  # a month ago
    await ledger.aclose()
    app = Starlette(routes=[Route("/v1/spend", spend)])
    app.state.ledger = ledger
    transport = httpx.ASGITransport(app=FakeAuth(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
    await db.aclose()


MASTER = {"x-test-master": "1"}


def exact(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.text, parse_float=Decimal)


def assert_error(response: httpx.Response, status: int, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if status == 400:
        assert error["type"] == "invalid_request_error"


async def test_master_sees_every_key_with_exact_costs(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/spend", params={"group_by": "key"}, headers=MASTER)
    body = exact(response)
    groups = {g["group"]: g for g in body["data"]}
    assert set(groups) == {"key_a", "key_b"}
    assert groups["key_a"] == {
        "group": "key_a",
        "key": "key_a",
        "requests": 2,
        "refused": {"budget": 0, "rate_limit": 0, "auth": 0},
        "failed": 0,
        "prompt_tokens": 200,
        "completion_tokens": 40,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost": D("12345.678901234568"),
        "cost_saved": 0,
        "unpriced_requests": 0,
    }
    assert '"cost":12345.678901234568' in response.text  # the Decimal's digits, not a float's
    assert (groups["key_b"]["cost"], groups["key_b"]["unpriced_requests"]) == (D(1), 1)
    total = body["total"]
    assert (total["requests"], total["prompt_tokens"], total["completion_tokens"]) == (4, 400, 80)
    assert (total["cost"], total["unpriced_requests"]) == (D("12346.678901234568"), 1)
    assert (body["group_by"], body["since"], body["until"]) == ("key", None, None)


async def test_unpriced_spend_is_null_not_zero(client: httpx.AsyncClient) -> None:
    body = exact(
        await client.get("/v1/spend", params={"group_by": "provider", "since": "7d"}, headers=MASTER)
    )
    groups = {g["group"]: g for g in body["data"]}
    assert groups["anthropic"]["cost"] is None and groups["anthropic"]["unpriced_requests"] == 1
    assert '"cost":null' in (await client.get("/v1/spend?group_by=model&until=3h", headers=MASTER)).text


async def test_a_virtual_key_sees_only_its_own_spend(client: httpx.AsyncClient) -> None:
    body = exact(await client.get("/v1/spend?group_by=key", headers={"x-test-key": "key_b"}))
    assert [g["group"] for g in body["data"]] == ["key_b"]
    own = await client.get("/v1/spend?key_id=key_b", headers={"x-test-key": "key_b"})
    assert exact(own)["total"]["requests"] == 2
    assert_error(await client.get("/v1/spend?key_id=key_a", headers={"x-test-key": "key_b"}), 403, "key_id")


async def test_master_may_ask_for_one_key(client: httpx.AsyncClient) -> None:
    body = exact(await client.get("/v1/spend?key_id=key_a&group_by=day", headers=MASTER))
    assert body["total"]["requests"] == 2
    assert all(len(g["group"]) == 10 for g in body["data"])


async def test_without_credentials_the_answer_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/spend")
    assert_error(response, 401, None)
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_since_and_until_cover_whole_utc_days(client: httpx.AsyncClient) -> None:
    month_ago = NOW - timedelta(days=30)
    since = (month_ago - timedelta(minutes=1)).isoformat()
    until = (month_ago + timedelta(minutes=1)).isoformat()
    body = exact(await client.get("/v1/spend", params={"since": since, "until": until}, headers=MASTER))
    assert body["total"]["requests"] == 1 and body["total"]["cost"] == D("1")
    day = month_ago.strftime("%Y-%m-%d")
    assert body["since"] == f"{day}T00:00:00Z"
    body = exact(await client.get("/v1/spend", params={"since": "7d"}, headers=MASTER))
    assert body["total"]["requests"] == 3


async def test_two_dimensions_at_once_and_filters(client: httpx.AsyncClient) -> None:
    body = exact(await client.get("/v1/spend?group_by=key,provider&user=alice", headers=MASTER))
    assert body["group_by"] == "key,provider"
    rows = {(g["key"], g["provider"]): g["requests"] for g in body["data"]}
    assert rows == {("key_a", "openai"): 2, ("key_b", "anthropic"): 1, ("key_b", "openai"): 1}
    assert all(g["group"] == [g["key"], g["provider"]] for g in body["data"])
    nobody = exact(await client.get("/v1/spend?group_by=model&customer=acme", headers=MASTER))
    assert nobody["data"] == [] and nobody["total"]["cost"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("group_by=week", "group_by"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("since=2026-03-01&until=2026-03-01", "until"),
        ("groupby=model", "groupby"),
        ("group_by=team,model,day", "group_by"),
    ],
)
async def test_bad_parameters_are_400_in_openai_shape(
    client: httpx.AsyncClient, query: str, param: str
) -> None:
    assert_error(await client.get(f"/v1/spend?{query}", headers=MASTER), 400, param)


async def test_a_gateway_without_a_ledger_says_so() -> None:
    transport = httpx.ASGITransport(app=FakeAuth(Starlette(routes=[Route("/v1/spend", spend)])))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/v1/spend", headers=MASTER)
    assert_error(response, 503, None)
