"""What only `RedisLimiter` does: Redis' own clock, shared seeding, failing closed when Redis fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from calcifer.domain.limits import Hold, LimiterUnavailable, Rate
from calcifer.limits.redis import RedisLimiter

D = Decimal


class BreakableProxy:
    """A loopback TCP proxy to the real Redis that, once broken, answers every command with an error."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 6379
        self._db = parts.path or "/0"
        self.broken = False
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._db}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)

        async def upstream_to_client() -> None:
            while data := await upstream_reader.read(65536):
                writer.write(data)
                await writer.drain()

        pump = asyncio.create_task(upstream_to_client())
        try:
            while data := await reader.read(65536):
                if self.broken:
                    writer.write(b"-ERR injected failure\r\n")
                    await writer.drain()
                else:
                    upstream_writer.write(data)
                    await upstream_writer.drain()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            upstream_writer.close()
            writer.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[BreakableProxy]:
    breakable = BreakableProxy(redis_url)
    yield breakable
    await breakable.close()


async def test_time_comes_from_the_redis_server_by_default(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisLimiter(redis_url, prefix=redis_prefix, reservation_ttl=60)
    await limiter.start()
    await limiter.start()  # idempotent
    try:
        held = await limiter.reserve("k", D("0.5"), D("1"), "total")
        assert await limiter.spent("k", "total") == D("0.5")  # the hold is live, not taken as expired
        await limiter.settle(held, D("0.2"))
        assert await limiter.spent("k", "total") == D("0.2")
        decision = await limiter.hit("k", 1, None, 0)
        assert decision.allowed and 0 < decision.reset_requests <= 60
        refused = await limiter.hit("k", 1, None, 0)
        assert not refused.allowed
        assert refused.retry_after is not None and 0 < refused.retry_after <= 60
    finally:
        await limiter.aclose()
        await limiter.aclose()


async def test_a_window_is_seeded_once_for_all_replicas(redis_url: str, redis_prefix: str) -> None:
    asked: list[str] = []

    async def baseline(budget_key: str, window: str) -> Decimal:
        asked.append(budget_key)
        return D("0.75")

    first = RedisLimiter(redis_url, prefix=redis_prefix, baseline=baseline)
    second = RedisLimiter(redis_url, prefix=redis_prefix, baseline=baseline)
    await first.start()
    await second.start()
    try:
        await first.reserve("k", D("0.2"), D("1"), "2026-11")
        assert await second.spent("k", "2026-11") == D("0.95")  # Redis already had the window
        assert asked == ["k"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_errors_fail_closed(proxy: BreakableProxy, redis_prefix: str) -> None:
    async def baseline(budget_key: str, window: str) -> Decimal:
        return D(0)

    limiter = RedisLimiter(await proxy.start(), prefix=redis_prefix, baseline=baseline, timeout=2)
    await limiter.start()
    try:
        held = await limiter.reserve("k", D("0.5"), D("1"), "total")
        proxy.broken = True
        with pytest.raises(LimiterUnavailable, match="cannot reach Redis"):
            await limiter.reserve("k", D("0.1"), D("1"), "total")
        with pytest.raises(LimiterUnavailable):
            await limiter.spent("unseen", "total")  # the baseline check fails too
        with pytest.raises(LimiterUnavailable):
            await limiter.hit("k", 10, None, 1)
        proxy.broken = False
        await limiter.settle(held, D("0.3"))
        assert await limiter.spent("k", "total") == D("0.3")
    finally:
        await limiter.aclose()


async def test_start_fails_closed_when_redis_is_unreachable() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout=1)
    with pytest.raises(LimiterUnavailable):
        await limiter.start()
    with pytest.raises(RuntimeError, match="before start"):
        await limiter.spent("k", "total")


async def test_a_request_is_one_command_to_admit_and_one_to_finish(redis_url: str, redis_prefix: str) -> None:
    sent: list[str] = []
    limiter = RedisLimiter(redis_url, prefix=redis_prefix)
    limiter.on_command = lambda store, seconds, ok: sent.append(store)
    await limiter.start()
    try:
        sent.clear()
        rates = [Rate("key", "key:k", 10, 1000), Rate("team", "team:t", 10, 1000)]
        holds = [
            Hold("key", "k", "k", D("1"), "2026-11"),
            Hold("team", "t", "team:t", D("5"), "2026-11"),
            Hold("customer", "c", "customer:c", D("1"), "2026-11-27"),
        ]
        _, held = await limiter.admit(rates, 100, holds, D("0.5"))
        assert len(sent) == 1
        await limiter.finish(held, D("0.1"), release=False, rates=rates, tokens=-40)
        assert len(sent) == 2
        await limiter.finish(None, None, release=False, rates=rates[:1], tokens=0)  # nothing to do
        assert len(sent) == 2
        decision = await limiter.hit("team:t", 10, 1000, 0)
        assert decision.remaining_tokens == 1000 - 60 and await limiter.spent("team:t", "2026-11") == D("0.1")
    finally:
        await limiter.aclose()
