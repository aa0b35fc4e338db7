"""Two `calcifer serve` replicas sharing Redis and PostgreSQL, one key with a small budget, hundreds of
concurrent requests through both: the budget holds across replicas, and the ledger has exactly one row
per answered request — nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
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
from tests.fakes.openai_server import FakeOpenAI, Script

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


def echo_chat(stream: bool, extra: dict[str, object] | None = None) -> dict[str, object]:
    """A chat request echo4 answers with WORDS (10 words in and out: $0.001), streamed with usage or not;
    `extra` adds fields (OpenAI's `user`, for one)."""
    body: dict[str, object] = {
        "model": "echo4",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": WORDS}],
        "stream": stream,
        **(extra or {}),
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


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
            requests.append((Sent(f"replicas-{run}-{i:04d}", url, stream), echo_chat(stream)))
        await fire(requests, secret, concurrency=CONCURRENCY, timeout=60)
        # Asked of the other replica: what Redis holds for the key once every request has ended.
        view = await admin("GET", gateways[1].url + f"/admin/keys/{key_id}")
    finally:
        for gateway in gateways:
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in gateways]
        if key_id:
            delete_redis_keys(f"calcifer:budget:{{budgets}}:{key_id}|*")

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


async def test_a_replica_stopped_mid_load_loses_nothing(
    shared: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    """Replica A gets SIGTERM while requests are in flight on it (half of them wait on a slow upstream);
    B keeps serving. Every answered request, on either replica, is in the ledger once, and Redis still
    agrees with the ledger on the key's spend: A settled every reservation before it exited."""
    total, stop_after, budget = 300, 100, Decimal("0.1")
    fake_openai.script(*[Script(delay=0.05) for _ in range(total)])
    env = {**shared, "OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": fake_openai.base_url}
    a, b = await start_replicas(env, 2)
    key_id = ""
    signalled: list[float] = []
    try:
        created = await admin("POST", a.url + "/admin/keys", {"name": "stopped", "max_budget": str(budget)})
        key_id, secret = str(created["id"]), str(created["key"])
        run = uuid.uuid4().hex[:8]
        requests: list[tuple[Sent, dict[str, object]]] = []
        for i in range(total):
            stream = (i // 2) % 2 == 1
            model = "gpt-4o" if (i // 4) % 2 else "echo4"  # gpt-4o: the slow fake upstream
            body: dict[str, object] = {
                "model": model,
                "max_tokens": 30,
                "messages": [{"role": "user", "content": WORDS}],
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            url = (a if i % 2 == 0 else b).url + "/v1/chat/completions"
            requests.append((Sent(f"stopped-{run}-{i:04d}", url, stream), body))

        def on_done(_sent: Sent) -> None:
            if not signalled and sum(1 for s, _ in requests if s.answered) >= stop_after:
                signalled.append(time.monotonic())
                a.terminate()

        await fire(requests, secret, concurrency=CONCURRENCY, timeout=60, on_done=on_done)
        view = await admin("GET", b.url + f"/admin/keys/{key_id}")
    finally:
        for gateway in (a, b):
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in (a, b)]
        if key_id:
            delete_redis_keys(f"calcifer:budget:{{budgets}}:{key_id}|*")

    assert signalled, "the load ended before replica A was stopped"
    sent = [s for s, _ in requests]
    answered = [s for s in sent if s.answered]
    on_a = [s for s in sent if s.url.startswith(a.url)]
    in_flight = [s for s in on_a if s.answered and s.started < signalled[0] < s.ended]
    assert in_flight, "no request was in flight on replica A when it was stopped"
    # Only A's requests went unanswered: those sent as it stopped (refused or reset before being read).
    # B answered every one of its own.
    unanswered = [s for s in sent if not s.answered]
    assert [
        (s.url, s.started - signalled[0])
        for s in unanswered
        if s not in on_a or s.started < signalled[0] - 0.5
    ] == []
    assert Counter(s.status for s in answered).keys() <= {200, 429}
    assert [s.body[-300:] for s in answered if s.status == 200 and not s.complete()][:3] == []
    assert {s.error_code() for s in answered if s.status == 429} <= {"budget_exceeded"}

    rows = await ledger_rows(shared["CALCIFER_DATABASE_URL"], shared["CALCIFER_DATABASE_SCHEMA"])
    ids = Counter(row.request_id for row in rows)
    assert [rid for rid, n in ids.items() if n > 1] == []
    assert set(ids) == {s.request_id for s in answered}
    spent = sum((row.cost for row in rows if isinstance(row.cost, Decimal)), Decimal(0))
    assert all(isinstance(row.cost, Decimal) for row in rows)
    assert 0 < spent <= budget
    assert Decimal(str(view["spend"])) == spent
    for log in logs:
        assert "dropped" not in log and "Traceback" not in log
    print(
        f"\nstopped replica: {len(sent)} sent, {len(answered)} answered ({len(in_flight)} in flight on A at "
        f"SIGTERM), {sum(1 for s in answered if s.status == 429)} refused, {len(rows)} rows, "
        f"spend {spent} of {budget}"
    )


async def test_replicas_share_one_rate_limit(shared: dict[str, str]) -> None:
    """A key's requests-per-minute hold across replicas: exactly `rpm` of a burst through both get in."""
    rpm, total = 60, 150
    gateways = await start_replicas(shared, 2)
    key_id = ""
    try:
        created = await admin("POST", gateways[0].url + "/admin/keys", {"name": "rated", "rpm_limit": rpm})
        key_id, secret = str(created["id"]), str(created["key"])
        run = uuid.uuid4().hex[:8]
        body: dict[str, object] = {"model": "echo4", "messages": [{"role": "user", "content": WORDS}]}
        requests = [
            (Sent(f"rated-{run}-{i:04d}", gateways[i % 2].url + "/v1/chat/completions", False), body)
            for i in range(total)
        ]
        # Rate windows are whole minutes (Redis' clock): start the burst well inside one.
        if time.time() % 60 > 45:
            await asyncio.sleep(60.1 - time.time() % 60)
        window = time.time() // 60
        await fire(requests, secret, concurrency=CONCURRENCY, timeout=30)
        same_window = time.time() // 60 == window
    finally:
        for gateway in gateways:
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in gateways]
        if key_id:
            delete_redis_keys(f"calcifer:rate:{{budgets}}:key:{key_id}")

    sent = [s for s, _ in requests]
    ok = [s for s in sent if s.status == 200]
    limited = [s for s in sent if s.status == 429]
    assert len(ok) + len(limited) == total, Counter(s.status for s in sent)
    assert same_window, "the burst crossed a minute boundary"
    assert len(ok) == rpm and {s.url for s in ok} == {g.url + "/v1/chat/completions" for g in gateways}
    assert {s.error_code() for s in limited} == {"rate_limit_exceeded"}
    rows = await ledger_rows(shared["CALCIFER_DATABASE_URL"], shared["CALCIFER_DATABASE_SCHEMA"])
    assert sorted(r.request_id for r in rows) == sorted(s.request_id for s in sent)
    for log in logs:
        assert "dropped" not in log and "Traceback" not in log
