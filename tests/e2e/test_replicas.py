"""Two `calcifer serve` replicas sharing Redis and PostgreSQL, one key with a small budget, hundreds of
concurrent requests through both: the budget holds across replicas, and the ledger has exactly one row
per answered request — nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import orjson
import pytest

from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger
from tests.e2e.load import (
    Sent,
    delete_redis_keys,
    drop_schema,
    fire,
    ledger_rows,
    require_postgres,
    require_redis,
)
from tests.e2e.process import GatewayProcess

pytestmark = pytest.mark.timeout(120)

MASTER = "mk-e2e-replicas-0123456789abcdefghij"
REQUESTS = 400
CONCURRENCY = 48
BUDGET = Decimal("0.2")
WORDS = "one two three four five six seven eight nine ten"
# echo4 charges $0.05 per 1K words, in and out: 10 words echoed back cost exactly $0.001.
COST_EACH = Decimal("0.001")


@pytest.fixture
async def shared() -> AsyncIterator[dict[str, str]]:
    """The environment of replicas that share the test Redis and a fresh PostgreSQL schema."""
    postgres = await require_postgres()
    redis_url = require_redis()
    schema = f"calcifer_e2e_{uuid.uuid4().hex[:16]}"
    yield {
        "CALCIFER_MASTER_KEY": MASTER,
        "CALCIFER_DATABASE_URL": postgres,
        "CALCIFER_DATABASE_SCHEMA": schema,
        "CALCIFER_REDIS_URL": redis_url,
    }
    await drop_schema(schema)


async def start_replicas(env: dict[str, str], count: int) -> list[GatewayProcess]:
    """Start `count` gateways at once (their migrations race on purpose); all or none."""
    started = await asyncio.gather(
        *(asyncio.to_thread(GatewayProcess, env) for _ in range(count)), return_exceptions=True
    )
    gateways = [g for g in started if isinstance(g, GatewayProcess)]
    failures = [g for g in started if isinstance(g, BaseException)]
    if failures:
        for gateway in gateways:
            gateway.stop()
        raise failures[0]
    return gateways


async def admin(method: str, url: str, body: object = None) -> dict[str, object]:
    headers = {"authorization": f"Bearer {MASTER}", "content-type": "application/json"}
    data = None if body is None else orjson.dumps(body)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.request(method, url, data=data, headers=headers) as response,
    ):
        assert response.status in (200, 201), await response.text()
        answer: dict[str, object] = await response.json(loads=orjson.loads)
        return answer


async def test_replicas_share_one_budget_and_record_every_answer_once(shared: dict[str, str]) -> None:
    gateways = await start_replicas(shared, 2)
    key_id = ""
    try:
        created = await admin(
            "POST",
            gateways[0].url + "/admin/keys",
            {"name": "replicas", "max_budget": str(BUDGET), "models": ["echo4"]},
        )
        key_id, secret = str(created["id"]), str(created["key"])
        run = uuid.uuid4().hex[:8]
        requests: list[tuple[Sent, dict[str, object]]] = []
        for i in range(REQUESTS):
            stream = (i // 2) % 2 == 1  # both replicas get both kinds
            url = gateways[i % 2].url + "/v1/chat/completions"
            body: dict[str, object] = {
                "model": "echo4",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": WORDS}],
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            requests.append((Sent(f"replicas-{run}-{i:04d}", url, stream), body))
        await fire(requests, secret, concurrency=CONCURRENCY, timeout=60)
        # Asked of the other replica: what Redis holds for the key once every request has ended.
        view = await admin("GET", gateways[1].url + f"/admin/keys/{key_id}")
    finally:
        for gateway in gateways:
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in gateways]
        if key_id:
            delete_redis_keys(f"calcifer:budget:{{{key_id}|*")

    sent = [s for s, _ in requests]
    answered = [s for s in sent if s.answered]
    ok = [s for s in answered if s.status == 200]
    refused = [s for s in answered if s.status == 429]
    assert [s.error for s in sent if not s.answered] == []
    assert len(ok) + len(refused) == len(answered), Counter(s.status for s in answered)
    assert all(s.echoed_id == s.request_id for s in answered)
    # The budget was the binding constraint: some requests fitted, the rest were refused for it.
    assert ok and refused
    assert {s.error_code() for s in refused} == {"budget_exceeded"}
    assert all(s.complete() for s in ok), [s.body[-200:] for s in ok if not s.complete()][:3]
    assert {s.stream for s in ok} == {True, False} and {s.url for s in ok} == {s.url for s in sent}

    rows = await ledger_rows(shared["CALCIFER_DATABASE_URL"], shared["CALCIFER_DATABASE_SCHEMA"])
    ids = Counter(row.request_id for row in rows)
    assert [rid for rid, n in ids.items() if n > 1] == []  # nothing doubled
    assert set(ids) == {s.request_id for s in answered}  # nothing lost, nothing extra
    assert len(rows) == len(answered)
    by_id = {s.request_id: s for s in answered}
    assert [
        r for r in rows if (r.status, r.streamed) != (by_id[r.request_id].status, by_id[r.request_id].stream)
    ] == []
    assert not any(row.cut_short for row in rows)

    database = await open_database(
        shared["CALCIFER_DATABASE_URL"], schema=shared["CALCIFER_DATABASE_SCHEMA"], migrate=False
    )
    try:
        report = await SqlLedger(database).query("key", key_id=key_id)
    finally:
        await database.aclose()
    spent = report.total.cost
    assert spent is not None and spent <= BUDGET
    assert spent == COST_EACH * len(ok)  # every answer charged exactly, every refusal $0
    # Redis agrees with the ledger: every reservation was settled or released, none leaked or doubled.
    assert Decimal(str(view["spend"])) == spent
    for log in logs:
        assert "dropped" not in log and "Traceback" not in log
    print(
        f"\nreplicas: {len(sent)} sent, {len(answered)} answered, {len(ok)} ok, {len(refused)} refused, "
        f"{len(rows)} rows, spend {spent} of {BUDGET}"
    )
