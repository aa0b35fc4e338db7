"""The `Limiter` contract: every adapter passes the same tests, Redis against a real Redis server.

Redis is at `CALCIFER_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0); each test uses its own key
prefix and deletes its keys afterwards. When Redis is unreachable the Redis cases skip loudly, unless
`CALCIFER_REQUIRE_SERVICES` is set (CI): then they fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest

from calcifer.domain.limits import (
    MAX_BUDGET,
    BudgetExceeded,
    Hold,
    Limiter,
    Rate,
    RateDecision,
    RateLimited,
    budget_window,
)
from calcifer.limits.memory import MemoryLimiter
from calcifer.limits.redis import RedisLimiter

START = 1_800_000_000.0  # a minute boundary: 2027-01-15T08:00:00Z
D = Decimal


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


Make = Callable[..., Awaitable[Limiter]]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Make]:
    """Builds limiters of one adapter sharing one state (for Redis: separate connections, one prefix)."""
    kind: str = request.param
    if kind == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
    built: list[Limiter] = []
    memory: MemoryLimiter | None = None

    async def build(**options: object) -> Limiter:
        nonlocal memory
        limiter: Limiter
        if kind == "memory":
            if memory is None or options:
                memory = MemoryLimiter(clock=clock, **options)  # type: ignore[arg-type]
            limiter = memory
        else:
            limiter = RedisLimiter(redis_url, prefix=prefix, clock=clock, **options)  # type: ignore[arg-type]
        await limiter.start()
        built.append(limiter)
        return limiter

    yield build
    for limiter in built:
        await limiter.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_both_adapters_implement_the_port(make: Make) -> None:
    assert isinstance(await make(), Limiter)


async def test_reserve_settle_and_release_are_exact(make: Make) -> None:
    limiter = await make()
    held = await limiter.reserve("k", D("0.3"), D("1"), "total")
    assert held.amount == D("0.3")
    assert await limiter.spent("k", "total") == D("0.3")
    await limiter.settle(held, D("0.123456789012"))
    assert await limiter.spent("k", "total") == D("0.123456789012")
    failed = await limiter.reserve("k", D("0.5"), D("1"), "total")
    assert await limiter.spent("k", "total") == D("0.623456789012")
    await limiter.release(failed)
    assert await limiter.spent("k", "total") == D("0.123456789012")
    # What is left fits exactly, to the last 1e-12 USD; one unit more does not.
    last = await limiter.reserve("k", D("0.876543210988"), D("1"), "total")
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.reserve("k", D("0.000000000001"), D("1"), "total")
    assert refused.value.remaining == 0
    await limiter.settle(last, D("0.8"))
    assert await limiter.spent("k", "total") == D("0.923456789012")


async def test_unpriced_settle_charges_the_reserved_worst_case(make: Make) -> None:
    limiter = await make()
    held = await limiter.reserve("k", D("0.25"), D("1"), "total")
    await limiter.settle(held, None)
    assert await limiter.spent("k", "total") == D("0.25")


async def test_refusal_reports_the_remaining_budget(make: Make) -> None:
    limiter = await make()
    await limiter.settle(await limiter.reserve("k", D("0.5"), D("5"), "total"), D("0.25"))
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.reserve("k", D("4.80"), D("5"), "total")
    assert refused.value.remaining == D("4.75")
    assert refused.value.kind == "budget_exceeded"
    assert "$4.75" in refused.value.message and "$4.80" in refused.value.message
    assert await limiter.spent("k", "total") == D("0.25")  # a refusal holds nothing


async def test_amounts_round_up_and_limits_round_down(make: Make) -> None:
    limiter = await make()
    held = await limiter.reserve("k", D("1e-13"), D("1"), "total")
    assert await limiter.spent("k", "total") == D("1e-12")
    await limiter.release(held)
    with pytest.raises(BudgetExceeded):
        await limiter.reserve("k", D("1.0000000000001"), D("1.0000000000009"), "total")


async def test_release_is_idempotent_and_keys_and_windows_are_separate(make: Make) -> None:
    limiter = await make()
    keep = await limiter.reserve("a", D("0.2"), D("1"), "2026-11-27")
    held = await limiter.reserve("a", D("0.3"), D("1"), "2026-11-27")
    await limiter.reserve("b", D("0.7"), D("1"), "2026-11-27")
    await limiter.reserve("a", D("0.9"), D("1"), "2026-11-28")
    await limiter.release(held)
    await limiter.release(held)
    assert await limiter.spent("a", "2026-11-27") == D("0.2")
    await limiter.settle(keep, D("0.1"))
    assert await limiter.spent("a", "2026-11-27") == D("0.1")
    assert await limiter.spent("b", "2026-11-27") == D("0.7")
    assert await limiter.spent("a", "2026-11-28") == D("0.9")
    assert await limiter.spent("nobody", "total") == 0


async def test_a_budget_as_large_as_supported_stays_exact(make: Make) -> None:
    # 9e6 USD is 9e18 units: far past 2**53, where a double would lose the last units.
    limiter = await make()
    await limiter.reserve("big", MAX_BUDGET - D("1e-12"), MAX_BUDGET, "total")
    await limiter.reserve("big", D("1e-12"), MAX_BUDGET, "total")
    with pytest.raises(BudgetExceeded):
        await limiter.reserve("big", D("1e-12"), MAX_BUDGET, "total")
    assert await limiter.spent("big", "total") == MAX_BUDGET
    with pytest.raises(ValueError, match="largest supported"):
        await limiter.reserve("big", D("1"), MAX_BUDGET + 1, "total")
    with pytest.raises(ValueError, match="negative"):
        await limiter.reserve("big", D("-1"), D("1"), "total")


async def test_an_abandoned_hold_expires_but_a_late_settle_still_charges(
    make: Make, clock: FakeClock
) -> None:
    limiter = await make(reservation_ttl=30.0)
    held = await limiter.reserve("k", D("0.6"), D("1"), "total")
    clock.now += 29
    with pytest.raises(BudgetExceeded):
        await limiter.reserve("k", D("0.6"), D("1"), "total")
    clock.now += 2
    assert await limiter.spent("k", "total") == 0
    await limiter.settle(held, D("0.5"))
    assert await limiter.spent("k", "total") == D("0.5")


async def test_a_daily_budget_rolls_over_at_midnight_utc(make: Make, clock: FakeClock) -> None:
    limiter = await make()
    clock.now = START + 16 * 3600 - 1  # 23:59:59 on 2027-01-15
    today = budget_window("daily", clock())
    await limiter.settle(await limiter.reserve("k", D("1"), D("1"), today), D("1"))
    with pytest.raises(BudgetExceeded):
        await limiter.reserve("k", D("0.01"), D("1"), budget_window("daily", clock()))
    clock.now += 1
    tomorrow = budget_window("daily", clock())
    assert (today, tomorrow) == ("2027-01-15", "2027-01-16")
    await limiter.reserve("k", D("0.01"), D("1"), tomorrow)
    assert await limiter.spent("k", today) == D("1")
    assert await limiter.spent("k", tomorrow) == D("0.01")


async def test_a_baseline_fills_a_window_the_limiter_has_not_seen(make: Make) -> None:
    asked: list[tuple[str, str]] = []

    async def baseline(budget_key: str, window: str) -> Decimal:
        asked.append((budget_key, window))
        return D("0.4") if budget_key == "old" else D(0)

    limiter = await make(baseline=baseline)
    assert await limiter.spent("old", "2026-11") == D("0.4")
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.reserve("old", D("0.7"), D("1"), "2026-11")
    assert refused.value.remaining == D("0.6")
    await limiter.reserve("old", D("0.6"), D("1"), "2026-11")
    assert await limiter.spent("old", "2026-11") == D("1")
    assert asked.count(("old", "2026-11")) == 1
    await limiter.reserve("new", D("1"), D("1"), "2026-11")  # seeded on its first reserve, at 0
    assert ("new", "2026-11") in asked


async def test_many_settled_reservations_leave_nothing_held(make: Make, clock: FakeClock) -> None:
    limiter = await make(reservation_ttl=100.0)
    for index in range(300):
        held = await limiter.reserve("k", D("0.5"), D("1"), "total")
        await (limiter.release(held) if index % 2 else limiter.settle(held, D("0.001")))
    assert await limiter.spent("k", "total") == D("0.150")
    clock.now += 101  # the settled holds' deadlines pass: nothing more is given back
    assert await limiter.spent("k", "total") == D("0.150")


async def _race(limiters: list[Limiter], tasks: int, amount: Decimal, limit: Decimal) -> int:
    async def one(index: int) -> bool:
        limiter = limiters[index % len(limiters)]
        try:
            held = await limiter.reserve("shared", amount, limit, "total")
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)
        await limiter.settle(held, amount / 2)
        return True

    return sum(await asyncio.gather(*(one(i) for i in range(tasks))))


async def test_concurrent_reservations_never_exceed_the_limit(make: Make) -> None:
    limiters = [await make(), await make()]  # Redis: two clients, two connection pools
    admitted = await _race(limiters, 300, D("0.01"), D("1"))
    spent = await limiters[0].spent("shared", "total")
    # Each admitted request settled at half its hold, freeing room for more: at least 100, and never
    # more than the budget allows.
    assert 100 <= admitted < 300
    assert spent == D("0.005") * admitted
    assert spent <= D("1")
    assert await limiters[1].spent("shared", "total") == spent


async def test_concurrent_holds_admit_exactly_what_fits(make: Make) -> None:
    limiters = [await make(), await make()]

    async def one(index: int) -> bool:
        try:
            await limiters[index % 2].reserve("held", D("0.03"), D("3"), "total")
        except BudgetExceeded:
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(400)))
    assert sum(results) == 100
    assert await limiters[0].spent("held", "total") == D("3")


def _headers(decision: RateDecision) -> tuple[int | None, int | None, int | None, int | None]:
    return (
        decision.limit_requests,
        decision.remaining_requests,
        decision.limit_tokens,
        decision.remaining_tokens,
    )


async def test_requests_per_minute(make: Make, clock: FakeClock) -> None:
    limiter = await make()
    clock.now = START + 15
    for remaining in (2, 1, 0):
        decision = await limiter.hit("key", 3, None, 10)
        assert decision.allowed and decision.retry_after is None
        assert _headers(decision) == (3, remaining, None, None)
        assert decision.reset_requests == pytest.approx(45)
    refused = await limiter.hit("key", 3, None, 10)
    assert not refused.allowed
    assert _headers(refused) == (3, 0, None, None)
    assert refused.retry_after == pytest.approx(45)
    assert (await limiter.hit("other key", 3, None, 10)).allowed
    clock.now = START + 60
    decision = await limiter.hit("key", 3, None, 10)
    assert decision.allowed and decision.remaining_requests == 2
    assert decision.reset_requests == pytest.approx(60)


async def test_tokens_per_minute_and_corrections(make: Make, clock: FakeClock) -> None:
    limiter = await make()
    clock.now = START + 50.5
    first = await limiter.hit("key", 10, 100, 60)
    assert _headers(first) == (10, 9, 100, 40)
    assert first.reset_tokens == pytest.approx(9.5)
    refused = await limiter.hit("key", 10, 100, 50)
    assert not refused.allowed
    assert _headers(refused) == (10, 9, 100, 40)  # a refused request counts nothing
    assert refused.retry_after == pytest.approx(9.5)
    await limiter.add_tokens("key", -30)  # the request used 30 tokens, not 60
    assert (await limiter.hit("key", 10, 100, 70)).remaining_tokens == 0
    await limiter.add_tokens("key", -500)  # never below zero
    assert (await limiter.hit("key", None, 100, 100)).allowed
    await limiter.add_tokens("key", 0)
    assert (await limiter.hit("key", None, 100, 0)).allowed
    await limiter.add_tokens("key", 1)
    assert not (await limiter.hit("key", None, 100, 0)).allowed


async def test_a_correction_after_the_window_rolled_counts_in_the_new_window(
    make: Make, clock: FakeClock
) -> None:
    limiter = await make()
    await limiter.hit("key", 5, 100, 10)
    clock.now += 60
    await limiter.add_tokens("key", 30)
    decision = await limiter.hit("key", 5, 100, 10)
    assert _headers(decision) == (5, 4, 100, 60)
    await limiter.add_tokens("unseen", -5)
    assert (await limiter.hit("unseen", None, 10, 10)).remaining_tokens == 0


async def test_no_limits_means_no_refusal(make: Make) -> None:
    limiter = await make()
    for _ in range(3):
        decision = await limiter.hit("key", None, None, 10**9)
        assert decision.allowed
        assert _headers(decision) == (None, None, None, None)


async def test_a_request_larger_than_the_token_limit_never_fits(make: Make) -> None:
    limiter = await make()
    refused = await limiter.hit("key", None, 100, 101)
    assert not refused.allowed
    assert refused.retry_after is not None and 0 < refused.retry_after <= 60


async def test_concurrent_hits_admit_exactly_the_limit(make: Make) -> None:
    limiters = [await make(), await make()]
    decisions = await asyncio.gather(*(limiters[i % 2].hit("burst", 50, 1000, 10) for i in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert sorted(d.remaining_requests or 0 for d in decisions if d.allowed) == list(range(50))
    assert all(d.retry_after is not None and d.retry_after > 0 for d in decisions if not d.allowed)


# Reservations over several levels at once (key, team, user, customer, tag...): all or none, settled and
# released at every level, never overspent under concurrency.
W = "2027-01"


def levels(key: str = "1", team: str = "10", customer: str = "100") -> list[Hold]:
    return [
        Hold("key", "k1", "k1", D(key), W),
        Hold("team", "red", "team:red", D(team), W),
        Hold("customer", "acme", "customer:acme", D(customer), "2027-01-15"),
    ]


async def test_a_hold_is_taken_at_every_level_or_none(make: Make) -> None:
    limiter = await make()
    held = await limiter.reserve_levels(levels(), D("0.75"))
    assert held.parts == (("k1", W), ("team:red", W), ("customer:acme", "2027-01-15"))
    for budget_key, window in held.parts:
        assert await limiter.spent(budget_key, window) == D("0.75")
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.reserve_levels(levels(key="10", team="1"), D("0.5"))  # the team cannot fit it
    assert (refused.value.level, refused.value.owner, refused.value.remaining) == ("team", "red", D("0.25"))
    assert "team budget of 'red'" in refused.value.message and "$0.25" in refused.value.message
    for budget_key, window in held.parts:  # nothing was taken at the levels that could fit it
        assert await limiter.spent(budget_key, window) == D("0.75")


async def test_settle_and_release_act_at_every_level(make: Make) -> None:
    limiter = await make()
    first = await limiter.reserve_levels(levels(), D("0.5"))
    second = await limiter.reserve_levels(levels(), D("0.25"))
    await limiter.settle(first, D("0.125"))
    await limiter.release(second)
    await limiter.release(second)  # idempotent
    for budget_key, window in first.parts:
        assert await limiter.spent(budget_key, window) == D("0.125")
    unpriced = await limiter.reserve_levels(levels(), D("0.25"))
    await limiter.settle(unpriced, None)  # charged its worst case at every level
    assert await limiter.spent("team:red", W) == D("0.375")


async def test_concurrent_keys_of_one_team_never_overspend_the_team(make: Make) -> None:
    limiters = [await make() for _ in range(3)]

    async def one(n: int) -> bool:
        holds = [
            Hold("key", f"k{n % 4}", f"k{n % 4}", D("10"), W),
            Hold("team", "red", "team:red", D("1"), W),
        ]
        try:
            held = await limiters[n % 3].reserve_levels(holds, D("0.3"))
        except BudgetExceeded as refused:
            assert refused.level == "team"
            return False
        await limiters[n % 3].settle(held, D("0.1"))
        return True

    answered = await asyncio.gather(*(one(n) for n in range(60)))
    spent = await limiters[0].spent("team:red", W)
    assert spent == D("0.1") * sum(answered) and spent <= D("1")
    assert sum(answered) >= 3


# One request's admission and close in one call each: every rate limit and every budget level at once.
KEY_RATE = Rate("key", "key:k1", 2, 1000)
TEAM_RATE = Rate("team", "team:red", 10, 150)


async def test_admit_counts_every_rate_and_holds_every_level_or_nothing(make: Make, clock: FakeClock) -> None:
    limiter = await make()
    clock.now = START + 20
    decisions, held = await limiter.admit([KEY_RATE, TEAM_RATE], 100, levels(), D("0.5"))
    assert [_headers(d) for d in decisions] == [(2, 1, 1000, 900), (10, 9, 150, 50)]
    assert decisions[0].reset_requests == pytest.approx(40)
    assert held is not None and await limiter.spent("team:red", W) == D("0.5")
    with pytest.raises(RateLimited) as limited:  # the team's tokens refuse: the key counts nothing
        await limiter.admit([KEY_RATE, TEAM_RATE], 100, levels(), D("0.1"))
    assert limited.value.level == "team" and _headers(limited.value.decision) == (10, 9, 150, 50)
    with pytest.raises(BudgetExceeded) as refused:  # the key's budget refuses: no rate counts it
        await limiter.admit([KEY_RATE, TEAM_RATE], 10, levels(), D("0.6"))
    assert (refused.value.level, refused.value.remaining) == ("key", D("0.5"))
    assert await limiter.spent("team:red", W) == D("0.5")
    decisions, none = await limiter.admit([KEY_RATE], 10, [], D(0))  # rates only: nothing held
    assert none is None and _headers(decisions[0]) == (2, 0, 1000, 890)
    with pytest.raises(RateLimited) as limited:
        await limiter.admit([KEY_RATE, TEAM_RATE], 1, levels(), D("0.1"))
    assert limited.value.level == "key" and _headers(limited.value.decision) == (2, 0, 1000, 890)
    assert await limiter.spent("k1", W) == D("0.5")


async def test_finish_settles_every_level_and_corrects_every_rate(make: Make) -> None:
    limiter = await make()
    _, held = await limiter.admit([KEY_RATE, TEAM_RATE], 100, levels(), D("0.5"))
    await limiter.finish(held, D("0.2"), release=False, rates=[KEY_RATE, TEAM_RATE], tokens=-60)
    for budget_key, window in levels_parts():
        assert await limiter.spent(budget_key, window) == D("0.2")
    decisions, released = await limiter.admit([KEY_RATE, TEAM_RATE], 10, levels(), D("0.5"))
    assert [d.remaining_tokens for d in decisions] == [1000 - 40 - 10, 150 - 40 - 10]
    await limiter.finish(released, None, release=True, rates=[KEY_RATE, TEAM_RATE], tokens=0)
    assert await limiter.spent("customer:acme", "2027-01-15") == D("0.2")
    await limiter.finish(None, None, release=False, rates=[TEAM_RATE], tokens=50)
    with pytest.raises(RateLimited) as limited:
        await limiter.admit([TEAM_RATE], 51, [], D(0))
    assert limited.value.decision.remaining_tokens == 150 - 100


def levels_parts() -> list[tuple[str, str]]:
    return [(hold.budget_key, hold.window) for hold in levels()]
