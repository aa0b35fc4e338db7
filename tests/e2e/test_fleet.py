"""The fleet behaves like one gateway: three `calcifer serve` replicas configured as the manifests
configure them (PostgreSQL + Redis, CALCIFER_MIGRATE=off after `calcifer migrate`) behind a round-robin
balancer, under mixed load (streams and JSON, a key with a budget, a key with a rate limit, a routed
model whose first deployment is cooling down, a cached model). Mid-load one replica is SIGKILLed and
restarted, another drained with SIGTERM. Then: clients saw errors only for requests in flight on the
killed replica (counted); every answered request is in the ledger exactly once (the replicas share a
ledger journal directory: the rows the killed replica had not written yet are replayed when it
restarts); the budget is not overspent; the rate limit held across the fleet in one window; the
cooldown and the cached answer were honoured by every replica, the restarted one included."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from calcifer.storage.database import open_database
from calcifer.storage.schema import spend
from tests.e2e.balancer import RoundRobinBalancer
from tests.e2e.load import Sent, delete_redis_keys, drop_schema, fire, require_postgres, require_redis
from tests.e2e.process import GatewayProcess
from tests.e2e.test_commands import run
from tests.e2e.test_replicas import MASTER, WORDS, admin, start_replicas
from tests.fakes.openai_server import FakeOpenAI, Script, error_body

pytestmark = pytest.mark.timeout(150)

BUDGET, COST_EACH = Decimal("0.08"), Decimal("0.001")  # echo4: 10 words in and out cost $0.001
RPM = 40
CONFIG = """\
providers:
  - {{name: primary{tag}, base_url: "{primary}", models: [gpt-4o], claim: false, max_retries: 0}}
  - {{name: backup{tag}, base_url: "{backup}", models: [gpt-4o], claim: false, max_retries: 0}}
routing:
  models:
    gpt-4o:
      strategy: cheapest
      deployments: [{{provider: primary{tag}}}, {{provider: backup{tag}}}]
    cached-gpt:
      deployments: [{{provider: backup{tag}, model: gpt-4o}}]
      cache: {{ttl: 120}}
"""


@pytest.fixture
async def fleet_env(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    postgres, redis_url = await require_postgres(), require_redis()
    schema = f"calcifer_fleet_{uuid.uuid4().hex[:16]}"
    yield {
        "CALCIFER_MASTER_KEY": MASTER,
        "CALCIFER_DATABASE_URL": postgres,
        "CALCIFER_DATABASE_SCHEMA": schema,
        "CALCIFER_REDIS_URL": redis_url,
        "CALCIFER_MIGRATE": "off",
        "CALCIFER_SHUTDOWN_DELAY": "1s",
        "CALCIFER_SHUTDOWN_GRACE": "20s",
        "CALCIFER_LEDGER_JOURNAL": str(tmp_path / "journal"),  # one directory for the fleet, as in Compose
    }
    await drop_schema(schema)


def _request(kind: str, i: int, run_id: str, url: str) -> tuple[Sent, dict[str, object]]:
    model = {"budget": "echo4", "rated": "echo4", "routed": "gpt-4o", "cached": "cached-gpt"}[kind]
    stream = kind in ("budget", "routed") and i % 2 == 1
    content = f"the cached question {run_id}" if kind == "cached" else WORDS
    body: dict[str, object] = {
        "model": model,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return Sent(f"fleet-{run_id}-{kind}-{i:04d}", url, stream), body


def _wave(
    kinds: dict[str, int], run_id: str, url: str, start: int = 0
) -> list[tuple[Sent, dict[str, object]]]:
    """Requests of each kind, interleaved so that every phase of the load mixes them."""
    requests = []
    for i in range(start, start + max(kinds.values())):
        requests += [_request(kind, i, run_id, url) for kind, count in kinds.items() if i - start < count]
    return requests


async def test_three_replicas_behave_like_one_gateway(fleet_env: dict[str, str], tmp_path: Path) -> None:
    tag = "-" + uuid.uuid4().hex[:10]
    run_id = tag[1:]
    primary, backup = FakeOpenAI(), FakeOpenAI()
    primary.script(
        Script(status=429, body=error_body("Slow down", "rate_limit_error"), headers={"Retry-After": "120"})
    )
    backup.script(*[Script(delay=0.1) for _ in range(2000)])  # slow: routed requests are in flight
    config = tmp_path / "calcifer.yaml"
    config.write_text(CONFIG.format(tag=tag, primary=primary.base_url, backup=backup.base_url))
    env = {**fleet_env, "CALCIFER_CONFIG": str(config)}

    migrated = run("migrate", env=env)  # the deployment step: the replicas never migrate
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied 0001"), migrated.stderr
    replicas = await start_replicas(env, 3)
    balancer = RoundRobinBalancer([r.port for r in replicas])
    killed, drained, steady = replicas[1], replicas[2], replicas[0]
    restarted: list[GatewayProcess] = []
    key_ids: list[str] = []
    moments: dict[str, float] = {}
    try:
        await balancer.wait_ready({r.port for r in replicas})
        keys = {}
        for name, limits in (
            ("budget", {"max_budget": str(BUDGET)}),
            ("rated", {"rpm_limit": RPM}),
            ("routed", {}),
            ("cached", {}),
        ):
            created = await admin("POST", steady.url + "/admin/keys", {"name": f"fleet-{name}", **limits})
            keys[name] = str(created["key"])
            key_ids.append(str(created["id"]))

        # Before the load: the primary deployment starts a cooldown (its 429 with Retry-After), and one
        # answer is cached; each through whichever replica the balancer picks.
        first = [_request("routed", 9999, run_id, balancer.url + "/v1/chat/completions")]
        await fire(first, keys["routed"], concurrency=1, timeout=30)
        assert first[0][0].status == 200 and len(primary.requests) == 1
        cached = [_request("cached", 9999, run_id, balancer.url + "/v1/chat/completions")]
        await fire(cached, keys["cached"], concurrency=1, timeout=30)
        assert cached[0][0].status == 200

        url = balancer.url + "/v1/chat/completions"
        phase1 = _wave({"budget": 160, "rated": 80, "routed": 160, "cached": 80}, run_id, url)
        # Rate windows are whole minutes; the rated burst (its own stream of requests) lasts seconds.
        if time.time() % 60 > 50:
            await asyncio.sleep(60.5 - time.time() % 60)
        epoch = time.time() - time.monotonic()

        def chaos(_sent: Sent) -> None:
            answered = sum(1 for s, _ in phase1 if s.answered)
            if "kill" not in moments and answered >= len(phase1) // 3:
                moments["kill"] = time.monotonic()
                killed.proc.kill()
            elif "term" not in moments and answered >= len(phase1) * 2 // 3:
                moments["term"] = time.monotonic()
                drained.terminate()

        await _fire_by_key(phase1, keys, concurrency=24, on_done=chaos)
        assert "kill" in moments and "term" in moments, "the load ended before the chaos"

        # The killed replica comes back on its port; the drained one stays down.
        killed.wait(10)
        restarted.append(await asyncio.to_thread(GatewayProcess, env, port=killed.port))
        assert drained.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
        await balancer.wait_ready({steady.port, killed.port})
        phase2 = _wave({"routed": 40, "cached": 40, "budget": 10}, run_id, url, start=5000)
        await _fire_by_key(phase2, keys, concurrency=16)
    finally:
        balancer.close()
        for gateway in (*replicas, *restarted):
            gateway.terminate()
        logs = [await asyncio.to_thread(g.output) for g in (steady, drained, *restarted)]
        for key_id in key_ids:
            delete_redis_keys(f"calcifer:*{key_id}*")
        delete_redis_keys(f"calcifer:cooldown:*{tag}/*")
        primary.close()
        backup.close()

    everything = phase1 + phase2
    sent = {s.request_id: s for s, _ in first + cached + everything}
    kinds = {s.request_id: s.request_id.split("-")[2] for s in sent.values()}
    relays = balancer.relays
    kill = moments["kill"]

    # Clients saw an error only for requests in flight on the killed replica when it died: relayed to it
    # and still open at the SIGKILL (some were accepted in the moment between the signal and its death).
    failed = [s for s in sent.values() if not s.answered or (s.status == 200 and not s.complete())]
    assert [
        s.request_id
        for s in failed
        if not (relays[s.request_id].backend == killed.port and relays[s.request_id].open_at(kill))
    ] == []
    answered = [s for s in sent.values() if s.answered and s not in failed]
    assert Counter(s.status for s in answered).keys() <= {200, 429}
    refusals = Counter((kinds[s.request_id], s.error_code()) for s in answered if s.status == 429)
    assert set(refusals) <= {("budget", "budget_exceeded"), ("rated", "rate_limit_exceeded")}, refusals

    # The ledger: each answered request exactly once, the killed replica's included.
    rows = await _ledger(env)
    ids = Counter(row[0] for row in rows)
    assert [rid for rid, n in ids.items() if n > 1] == []
    assert [s.request_id for s in answered if s.request_id not in ids] == []
    assert any("dead process file(s) replayed" in log for log in logs)

    # The budget binds fleet-wide and is never overspent.
    budget_rows = [row for row in rows if kinds.get(row[0]) == "budget"]
    spent = sum((row[2] for row in budget_rows if row[2] is not None), Decimal(0))
    assert spent <= BUDGET and refusals[("budget", "budget_exceeded")] > 0
    assert spent == COST_EACH * len([r for r in budget_rows if r[1] == 200])

    # The rate limit holds across the replicas within one window.
    rated_ok = [s for s in answered if kinds[s.request_id] == "rated" and s.status == 200]
    rated_lost = [s for s in failed if kinds[s.request_id] == "rated"]
    rated_times = [t for s, _ in phase1 if kinds[s.request_id] == "rated" for t in (s.started, s.ended)]
    assert len({(epoch + t) // 60 for t in rated_times}) == 1, "the rated burst crossed a minute boundary"
    assert RPM - len(rated_lost) <= len(rated_ok) <= RPM
    assert len({relays[s.request_id].backend for s in rated_ok}) >= 2

    # Every replica honoured the cooldown (the primary saw only the first request) and the cache (the
    # cached question reached the upstream once); the restarted replica answered both kinds.
    assert len(primary.requests) == 1
    question = f"the cached question {run_id}"
    assert sum(1 for body in backup.requests if body["messages"][0]["content"] == question) == 1
    hits = {row[0] for row in rows if row[3]}
    assert [
        s.request_id
        for s in answered
        if kinds[s.request_id] == "cached" and s.request_id in ids and s.request_id not in hits
    ] == [cached[0][0].request_id]
    after_restart = {
        kinds[s.request_id]
        for s, _ in phase2
        if relays[s.request_id].backend == killed.port and s.status == 200
    }
    assert {"routed", "cached"} <= after_restart
    for log in logs:
        assert "Traceback" not in log and "dropped" not in log
    in_flight = len(failed)
    print(
        f"\nfleet: {len(sent)} requests, {len(answered)} answered, {in_flight} failed in flight on the "
        f"SIGKILLed replica, none of the answered lost, {balancer.refused} connections "
        f"refused and moved on, {sum(refusals.values())} refused by limits, spend {spent} of {BUDGET}, "
        f"{len(rated_ok)} of {RPM} rpm"
    )


async def _fire_by_key(
    requests: list[tuple[Sent, dict[str, object]]],
    keys: dict[str, str],
    *,
    concurrency: int,
    on_done: Callable[[Sent], None] = lambda _sent: None,
) -> None:
    """Send each kind of request with its own key, all kinds at once (sharing `concurrency`)."""
    kinds = {sent.request_id.split("-")[2] for sent, _ in requests}
    each = max(1, concurrency // len(kinds))
    await asyncio.gather(
        *(
            fire(
                [r for r in requests if r[0].request_id.split("-")[2] == kind],
                keys[kind],
                concurrency=each,
                timeout=60,
                on_done=on_done,
            )
            for kind in sorted(kinds)
        )
    )


async def _ledger(env: dict[str, str]) -> list[tuple[str, int, Decimal | None, bool]]:
    database = await open_database(
        env["CALCIFER_DATABASE_URL"], schema=env["CALCIFER_DATABASE_SCHEMA"], migrate=False
    )
    try:
        columns = (spend.c.request_id, spend.c.status, spend.c.cost, spend.c.cache_hit)
        async with database.engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(select(*columns))).all()]
    finally:
        await database.aclose()
