"""The `ResponseCache` contract, passed by the memory and the Redis cache; Redis failing as a miss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from calcifer.cache.memory import MemoryResponseCache
from calcifer.cache.redis import RedisResponseCache
from calcifer.domain.cache import CachedAnswer, ResponseCache
from calcifer.domain.types import Usage

WHOLE = CachedAnswer(
    "gpt-4o",
    "openai",
    Usage(12, 25, cached_tokens=4, estimated=True),
    Decimal("0.000280000001"),
    body={"object": "chat.completion", "choices": [{"message": {"content": "héllo"}}], "usage": None},
)
STREAM = CachedAnswer(
    "gpt-4o",
    "azure",
    Usage(10, 3),
    None,
    chunks=(({"choices": [{"delta": {"content": "a"}}]}, None), ({"choices": [], "usage": {}}, Usage(10, 3))),
)
NATIVE = CachedAnswer(
    "claude-sonnet-4-6",
    "anthropic",
    Usage(10, 3),
    Decimal("0.000075"),
    chunks=(({"type": "message_delta", "usage": {"output_tokens": 3}}, Usage(10, 3)),),
    api="anthropic.messages",
)


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[ResponseCache]:
    if request.param == "memory":
        yield MemoryResponseCache()
        return
    store = RedisResponseCache(
        request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix")
    )
    await store.start()
    yield store
    await store.aclose()


async def test_answers_come_back_exactly_until_they_expire(cache: ResponseCache) -> None:
    assert isinstance(cache, ResponseCache)
    assert await cache.get("k1") is None
    await cache.put("k1", WHOLE, 0.3)
    await cache.put("k2", STREAM, 30)
    await cache.put("k3", NATIVE, 30)
    assert await cache.get("k1") == WHOLE
    assert await cache.get("k2") == STREAM
    assert await cache.get("k3") == NATIVE
    await asyncio.sleep(0.4)
    assert await cache.get("k1") is None
    assert await cache.get("k2") == STREAM


async def test_a_zero_ttl_is_not_kept(cache: ResponseCache) -> None:
    await cache.put("k", WHOLE, 0)
    assert await cache.get("k") is None


async def test_memory_evicts_the_least_recently_used() -> None:
    cache = MemoryResponseCache(max_entries=2)
    await cache.put("a", WHOLE, 60)
    await cache.put("b", WHOLE, 60)
    assert await cache.get("a") == WHOLE  # a is now the most recently used
    await cache.put("c", WHOLE, 60)
    assert await cache.get("b") is None and await cache.get("a") == WHOLE and len(cache) == 2
    with pytest.raises(ValueError):
        MemoryResponseCache(max_entries=0)


async def test_redis_failing_or_a_foreign_value_is_a_miss(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = RedisResponseCache("redis://127.0.0.1:1/0", timeout=0.2)
    await down.start()
    await down.put("k", WHOLE, 60)
    assert await down.get("k") is None
    await down.aclose()
    assert "response cache: write failed" in caplog.text
    import redis.asyncio

    raw = redis.asyncio.Redis.from_url(redis_url)
    await raw.set(redis_prefix + "bad", b'{"v": 99}')
    await raw.aclose()
    store = RedisResponseCache(redis_url, prefix=redis_prefix)
    await store.start()
    assert await store.get("bad") is None
    await store.aclose()
