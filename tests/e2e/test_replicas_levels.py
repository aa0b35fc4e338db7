"""Two `calcifer serve` replicas on PostgreSQL + Redis, ~200 concurrent requests (streamed and not) from
nine keys spread over both: a team whose budget is smaller than its keys' budgets combined, a user across
two keys, a customer across two keys (named by `x-calcifer-customer` on one, OpenAI's `user` field on the
other) and a tag across two keys (`x-calcifer-tags` on one, the key's `metadata.tags` on the other). Each
level's spend ends within its cap, the ledger (read through `/v1/spend` once both replicas have drained
it) equals what the Redis counters settled to at every level, and every 429 names the level that
refused."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp
import pytest
from sqlalchemy import insert

from calcifer.limits.redis import RedisLimiter
from calcifer.storage.database import open_database
from calcifer.storage.schema import tag_budgets
from tests.e2e.load import Sent, delete_redis_keys, fire, ledger_rows
from tests.e2e.process import GatewayProcess
from tests.e2e.test_replicas import MASTER, admin, echo_chat, shared, start_replicas  # noqa: F401

pytestmark = pytest.mark.timeout(120)

PER_KEY_CONCURRENCY = 6
COST_EACH = Decimal("0.001")  # echo4: 10 words in, the same 10 out, at $0.05 per 1K words each way
CAP = Decimal("0.02")  # every level's budget: room for a score of answers in ~48 requests
TEAM_KEY_BUDGET = Decimal("0.02")  # three team keys: $0.06 of key budgets over a $0.02 team budget
REFUSAL = re.compile(r"of the (?:(\w+) budget of '([^']+)'|budget) remains")


@dataclass
class Group:
    """The keys that share one level, the requests they send and the level they share."""

    level: str
    owner: str
    requests: list[tuple[Sent, dict[str, object]]] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (id, secret)

    @property
    def budget_key(self) -> str:
        return f"{self.level}:{self.owner}"


def refused_by(sent: Sent) -> tuple[str, str | None]:
    """The (level, owner) a 429 body names: ("key", None) for the key's own budget."""
    message = json.loads(sent.body)["error"]["message"]
    found = REFUSAL.search(message)
    assert found is not None, message
    return (found.group(1), found.group(2)) if found.group(1) else ("key", None)


async def spend_report(url: str, **filters: str) -> dict[str, object]:
    """`GET /v1/spend` with the master key, its amounts as exact Decimals."""
    headers = {"authorization": f"Bearer {MASTER}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(url + "/v1/spend", params=filters, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        total: dict[str, object] = json.loads(await response.text(), parse_float=Decimal)["total"]
        return total


async def counter(redis_url: str, budget_key: str) -> Decimal:
    """What Redis holds for a budget counter (period `total`), read without any baseline."""
    limiter = RedisLimiter(redis_url)
    await limiter.start()
    try:
        return await limiter.spent(budget_key, "total")
    finally:
        await limiter.aclose()


async def test_every_level_holds_across_replicas(shared: dict[str, str]) -> None:  # noqa: F811
    gateways = await start_replicas(shared, 2)
    run = uuid.uuid4().hex[:8]
    team, user = Group("team", f"t-{run}"), Group("user", f"u-{run}")
    customer, tag = Group("customer", f"c-{run}"), Group("tag", f"p-{run}")
    groups = [team, user, customer, tag]
    base = gateways[0].url
    try:
        await admin(
            "POST",
            base + "/admin/teams",
            {"id": team.owner, "name": "Levels", "max_budget": str(CAP), "budget_period": "total"},
        )
        await admin(
            "POST",
            base + "/admin/users",
            {"id": user.owner, "name": "Ada", "max_budget": str(CAP), "budget_period": "total"},
        )
        await admin(
            "POST",
            base + "/admin/customers",
            {"id": customer.owner, "max_budget": str(CAP), "budget_period": "total"},
        )
        # Tag budgets have no admin API: an operator writes the row in the `tag_budgets` table.
        database = await open_database(
            shared["CALCIFER_DATABASE_URL"], schema=shared["CALCIFER_DATABASE_SCHEMA"], migrate=False
        )
        try:
            async with database.engine.begin() as connection:
                await connection.execute(
                    insert(tag_budgets).values(tag=tag.owner, max_budget=CAP, budget_period="total")
                )
        finally:
            await database.aclose()

        key_bodies: list[tuple[Group, dict[str, object], dict[str, str], dict[str, object]]] = []
        for _ in range(3):
            key: dict[str, object] = {
                "team_id": team.owner,
                "max_budget": str(TEAM_KEY_BUDGET),
                "budget_period": "total",
            }
            key_bodies.append((team, key, {}, {}))
        for _ in range(2):
            key_bodies.append((user, {"user_id": user.owner}, {}, {}))
        key_bodies.append((customer, {}, {"x-calcifer-customer": customer.owner}, {}))
        key_bodies.append((customer, {}, {}, {"user": customer.owner}))
        key_bodies.append((tag, {}, {"x-calcifer-tags": tag.owner}, {}))
        key_bodies.append((tag, {"metadata": {"tags": [tag.owner]}}, {}, {}))

        loads = []
        for k, (group, key_body, headers, extra) in enumerate(key_bodies):
            created = await admin(
                "POST", base + "/admin/keys", {"name": f"levels-{k}", "models": ["echo4"], **key_body}
            )
            group.keys.append((str(created["id"]), str(created["key"])))
            per_key = 16 if group is team else 24  # 48 requests at every level
            mine: list[tuple[Sent, dict[str, object]]] = []
            for i in range(per_key):
                stream = (i // 2) % 2 == 1  # both replicas get both kinds
                url = gateways[(i + k) % 2].url + "/v1/chat/completions"
                one = Sent(f"levels-{run}-{k}-{i:03d}", url, stream, headers=headers)
                mine.append((one, echo_chat(stream, extra)))
            group.requests.extend(mine)
            loads.append(fire(mine, str(created["key"]), concurrency=PER_KEY_CONCURRENCY, timeout=60))
        await asyncio.gather(*loads)
    finally:
        for gateway in gateways:
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in gateways]

    # Both replicas have exited, so their ledgers are flushed: a fresh replica reports what they wrote.
    reader = await asyncio.to_thread(GatewayProcess, shared)
    try:
        reports = {
            g.level: await spend_report(reader.url, group_by=g.level, **{g.level: g.owner}) for g in groups
        }
        key_reports = {
            key_id: await spend_report(reader.url, group_by="key", key_id=key_id)
            for g in groups
            for key_id, _ in g.keys
        }
        everything = await spend_report(reader.url, group_by="model")
    finally:
        logs.append(await asyncio.to_thread(reader.stop))

    redis_url = shared["CALCIFER_REDIS_URL"]
    budget_keys = [g.budget_key for g in groups] + [key_id for key_id, _ in team.keys]
    try:
        counters = {name: await counter(redis_url, name) for name in budget_keys}
    finally:
        for name in budget_keys:
            delete_redis_keys(f"calcifer:budget:{{budgets}}:{name}|*")

    sent = [s for g in groups for s, _ in g.requests]
    assert [s.error for s in sent if not s.answered] == []
    assert Counter(s.status for s in sent).keys() == {200, 429}, Counter(s.status for s in sent)
    ok = [s for s in sent if s.status == 200]
    assert all(s.echoed_id == s.request_id for s in sent)
    assert all(s.complete() for s in ok), [s.body[-200:] for s in ok if not s.complete()][:3]
    assert {(s.stream, s.url) for s in ok} == {(st, s.url) for s in sent for st in (True, False)}

    summary = []
    for g in groups:
        of_group = [s for s, _ in g.requests]
        answered = [s for s in of_group if s.status == 200]
        refused = [s for s in of_group if s.status == 429]
        # The level was the binding constraint: some fitted, the rest were refused, naming it.
        assert answered and refused, g.level
        assert {s.error_code() for s in refused} == {"budget_exceeded"}
        names = Counter(refused_by(s) for s in refused)
        allowed = {(g.level, g.owner)} | ({("key", None)} if g is team else set())
        assert set(names) <= allowed, (g.level, names)
        assert names[(g.level, g.owner)] > 0, (g.level, names)
        # Spend at the level, as the ledger reports it, is every answer charged exactly and within the cap.
        report = reports[g.level]
        spent = report["cost"]
        assert isinstance(spent, Decimal)
        assert spent == COST_EACH * len(answered) and spent <= CAP, (g.level, spent)
        assert report["requests"] == len(answered)
        assert report["refused"] == {"budget": len(refused), "rate_limit": 0, "auth": 0}
        # ... and Redis settled the level's counter to exactly that: no reservation leaked or doubled.
        assert counters[g.budget_key] == spent, (g.level, counters[g.budget_key], spent)
        by_key = {key_id: key_reports[key_id]["cost"] or Decimal(0) for key_id, _ in g.keys}
        assert all(isinstance(cost, Decimal) for cost in by_key.values())
        assert sum(Decimal(str(cost)) for cost in by_key.values()) == spent
        if g is team:  # the team's keys have budgets of their own: each held, and settled exactly
            assert all(Decimal(str(cost)) <= TEAM_KEY_BUDGET for cost in by_key.values())
            assert {key_id: counters[key_id] for key_id in by_key} == by_key
        summary.append(f"{g.level} {len(answered)} ok / {len(refused)} refused, ${spent} of ${CAP}")

    rows = await ledger_rows(shared["CALCIFER_DATABASE_URL"], shared["CALCIFER_DATABASE_SCHEMA"])
    ids = Counter(row.request_id for row in rows)
    assert [rid for rid, n in ids.items() if n > 1] == []
    assert set(ids) == {s.request_id for s in sent}
    total = everything["cost"]
    assert total == COST_EACH * len(ok) == sum(counters[g.budget_key] for g in groups)
    for log in logs:
        assert "dropped" not in log and "Traceback" not in log
    print(f"\nlevels over two replicas: {len(sent)} sent; " + "; ".join(summary))
