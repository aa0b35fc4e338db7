"""The `CooldownStore` contract, passed by the memory and the Redis store; and Redis failing open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from calcifer.domain.cooldowns import CooldownStore
from calcifer.limits.cooldowns import MemoryCooldownStore
from calcifer.limits.redis_cooldowns import RedisCooldownStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CooldownStore]:
    if request.param == "memory":
        yield MemoryCooldownStore()
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    redis_store = RedisCooldownStore(url, prefix=prefix)
    await redis_store.start()
    yield redis_store
    await redis_store.aclose()


async def test_a_cooldown_is_seen_until_it_ends(store: CooldownStore) -> None:
    assert isinstance(store, CooldownStore)
    assert await store.cooling({"a", "b"}) == {}
    before = time.time()
    await store.cool("a", 0.3)
    cooling = await store.cooling({"a", "b"})
    assert set(cooling) == {"a"} and before + 0.3 <= cooling["a"] <= time.time() + 0.3
    await asyncio.sleep(0.4)
    assert await store.cooling({"a", "b"}) == {}


async def test_a_longer_cooldown_is_not_shortened(store: CooldownStore) -> None:
    await store.cool("a", 30)
    until = (await store.cooling(["a"]))["a"]
    await store.cool("a", 0.1)
    await asyncio.sleep(0.2)
    assert (await store.cooling(["a"]))["a"] == pytest.approx(until)
    await store.cool("a", 60)
    assert (await store.cooling(["a"]))["a"] > until + 25


async def test_replicas_share_redis_cooldowns(redis_url: str, redis_prefix: str) -> None:
    one, two = (
        RedisCooldownStore(redis_url, prefix=redis_prefix),
        RedisCooldownStore(redis_url, prefix=redis_prefix),
    )
    await one.start()
    await two.start()
    try:
        await one.cool("openai/gpt-4o", 5)
        assert set(await two.cooling(["openai/gpt-4o", "azure/gpt-4o"])) == {"openai/gpt-4o"}
    finally:
        await one.aclose()
        await two.aclose()


async def test_an_unreachable_redis_cools_nothing_and_fails_nothing(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisCooldownStore("redis://127.0.0.1:1/0", timeout=0.2)
    await store.start()
    try:
        await store.cool("a", 10)
        assert await store.cooling(["a"]) == {}
    finally:
        await store.aclose()
    assert "cooldowns: Redis failed" in caplog.text
