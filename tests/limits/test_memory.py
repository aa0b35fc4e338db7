"""What only `MemoryLimiter` does: forget idle windows, and seed a window once under concurrency."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from calcifer.limits.memory import MemoryLimiter

D = Decimal
START = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def test_idle_windows_are_forgotten_after_their_ttl() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    await limiter.settle(await limiter.reserve("k", D("1"), D("5"), "2027-01-15"), D("1"))
    await limiter.settle(await limiter.reserve("k", D("2"), D("5"), "total"), D("2"))
    await limiter.hit("k", 10, None, 0)
    clock.now += 3 * 86_400 + 61  # past the daily window's TTL
    await limiter.hit("other", 10, None, 0)  # a sweep runs
    assert await limiter.spent("k", "2027-01-15") == 0
    assert await limiter.spent("k", "total") == D("2")  # a total budget is never forgotten
    assert (await limiter.hit("k", 10, None, 0)).remaining_requests == 9
    await limiter.aclose()
    assert await limiter.spent("k", "total") == 0


async def test_concurrent_first_uses_seed_a_window_once() -> None:
    gate = asyncio.Event()

    async def baseline(budget_key: str, window: str) -> Decimal:
        await gate.wait()
        return D("0.5")

    limiter = MemoryLimiter(baseline=baseline)
    tasks = [asyncio.create_task(limiter.reserve("k", D("0.1"), D("1"), "total")) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert await limiter.spent("k", "total") == D("0.8")
