"""Redis commands timed by the store that sent them, through a real gateway on the test Redis; and a
failing Redis counted as errors (a real refused connection)."""

from __future__ import annotations

import asyncio
import uuid

import httpx2 as httpx

from calcifer.limits.redis_cooldowns import RedisCooldownStore
from calcifer.observability.gauges import StateGauges
from tests.fakes.threaded import free_port
from tests.limits.conftest import redis_url
from tests.observability.scrape import Scrape, scrape
from tests.routing.conftest import Start

__all__ = ["redis_url"]
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


def test_redis_commands_are_timed_by_store(routed: Start, redis_url: str) -> None:
    tag = "-" + uuid.uuid4().hex[:12]
    setup = routed(redis_url=redis_url, tag=tag)
    headers = {"x-calcifer-cache": "on"}
    for _ in range(2):
        body = {**BODY, "messages": [{"role": "user", "content": f"hello {tag}"}]}
        assert httpx.post(setup.url, json=body, headers=headers, timeout=10).status_code == 200
    found = scrape(setup.gateway.url + "/metrics")
    assert found.value("calcifer_redis_command_seconds_count", store="cooldowns") >= 2  # read per request
    assert found.value("calcifer_redis_command_seconds_count", store="cache") >= 3  # get, set, get
    assert found.value("calcifer_redis_errors_total") == 0


def test_a_redis_that_refuses_connections_is_counted_as_errors() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    gauges = StateGauges(registry)
    store = RedisCooldownStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    store.on_command = gauges.redis

    async def run() -> None:
        await store.start()
        try:
            assert await store.cooling(["a/b"]) == {}  # best effort: nothing is cooling down
        finally:
            await store.aclose()

    asyncio.run(run())
    found = Scrape(generate_latest(registry).decode())
    assert found.value("calcifer_redis_errors_total", store="cooldowns") == 1
    assert found.value("calcifer_redis_command_seconds_count", store="cooldowns") == 1
