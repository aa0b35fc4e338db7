"""`MemoryLimiter`: budgets and rate limits held in the process (one gateway instance).

Every check-and-update runs without an `await` between the check and the update, so it is atomic for
all the tasks of the event loop. Counters are integer units of 1e-12 USD, as in the Redis adapter, so
both adapters round and compare identically. Nothing survives a restart except what the optional
`baseline` source reports (the ledger's spend for a window).
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from calcifer.domain.limits import (
    BaselineSource,
    BudgetExceeded,
    Hold,
    RateDecision,
    Reservation,
    check_amount,
    check_limit,
    from_units,
    rate_decision,
    rate_window,
    window_ttl,
)

_SWEEP_SECONDS = 60.0
_NONE = (0, 0.0)


@dataclass(slots=True)
class _Budget:
    total: int = 0
    """Settled plus held units."""
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Reservation id -> (units, deadline)."""
    deadlines: list[tuple[float, str]] = field(default_factory=list)
    """A heap of (deadline, reservation id); ids no longer in `holds` are skipped, and the heap is
    rebuilt from `holds` when stale entries outnumber live ones."""
    touched: float = 0.0


@dataclass(slots=True)
class _Rate:
    window: int
    requests: int = 0
    tokens: int = 0


class MemoryLimiter:
    """The in-process `Limiter`.

    `clock` gives seconds since the epoch (tests pass a fake one); `reservation_ttl` is how long a
    hold lives if its request never settles it (a bug, or a task cancelled without cleanup); it must
    outlast the longest request. `baseline` fills a budget window the first time it is used.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = 3600.0,
        baseline: BaselineSource | None = None,
    ) -> None:
        self._clock = clock
        self._reservation_ttl = reservation_ttl
        self._baseline = baseline
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._rates: dict[str, _Rate] = {}
        self._swept = 0.0

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._budgets.clear()
        self._rates.clear()

    async def reserve(self, budget_key: str, amount: Decimal, limit: Decimal, window: str) -> Reservation:
        return await self.reserve_levels([Hold("key", budget_key, budget_key, limit, window)], amount)

    async def reserve_levels(self, holds: Sequence[Hold], amount: Decimal) -> Reservation:
        units = check_amount(amount)
        limits = [check_limit(hold.limit) for hold in holds]
        for hold in holds:
            await self._load(hold.budget_key, hold.window)
        # From here to the end: no await, so the checks and the updates are one step.
        now = self._clock()
        self._sweep(now)
        budgets = [self._budget(hold.budget_key, hold.window, now) for hold in holds]
        for hold, budget, limit_units in zip(holds, budgets, limits, strict=True):
            if budget.total + units > limit_units:
                raise BudgetExceeded(
                    from_units(limit_units - budget.total),
                    requested=amount,
                    level=hold.level,
                    owner=hold.owner,
                )
        parts = tuple((hold.budget_key, hold.window) for hold in holds)
        reservation = Reservation(
            uuid.uuid4().hex,
            holds[0].budget_key,
            holds[0].window,
            amount,
            units,
            parts if len(parts) > 1 else (),
        )
        deadline = now + self._reservation_ttl
        for budget in budgets:
            budget.total += units
            budget.holds[reservation.id] = (units, deadline)
            if len(budget.deadlines) > 2 * len(budget.holds) + 64:
                budget.deadlines = [(held[1], key) for key, held in budget.holds.items()]
                heapq.heapify(budget.deadlines)
            else:
                heapq.heappush(budget.deadlines, (deadline, reservation.id))
        return reservation

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        charge = reservation.units if actual is None else check_amount(actual, "actual cost")
        now = self._clock()
        for budget_key, window in reservation.parts:
            budget = self._budget(budget_key, window, now)
            budget.total += charge - budget.holds.pop(reservation.id, _NONE)[0]

    async def release(self, reservation: Reservation) -> None:
        now = self._clock()
        for budget_key, window in reservation.parts:
            budget = self._budget(budget_key, window, now)
            budget.total -= budget.holds.pop(reservation.id, _NONE)[0]

    async def spent(self, budget_key: str, window: str) -> Decimal:
        await self._load(budget_key, window)
        return from_units(self._budget(budget_key, window, self._clock()).total)

    async def hit(self, rate_key: str, rpm: int | None, tpm: int | None, tokens: int) -> RateDecision:
        now = self._clock()
        index, reset = rate_window(now)
        if rpm is None and tpm is None:
            return rate_decision(True, None, None, 0, 0, reset)
        self._sweep(now)
        rate = self._rates.get(rate_key)
        if rate is None or rate.window != index:
            rate = self._rates[rate_key] = _Rate(index)
        fits = (rpm is None or rate.requests + 1 <= rpm) and (tpm is None or rate.tokens + tokens <= tpm)
        if fits:
            rate.requests += 1
            rate.tokens += tokens
        return rate_decision(fits, rpm, tpm, rate.requests, rate.tokens, reset)

    async def add_tokens(self, rate_key: str, tokens: int) -> None:
        index, _ = rate_window(self._clock())
        rate = self._rates.get(rate_key)
        if rate is None or rate.window != index:
            rate = self._rates[rate_key] = _Rate(index)
        rate.tokens = max(rate.tokens + tokens, 0)

    async def _load(self, budget_key: str, window: str) -> None:
        if self._baseline is None or (budget_key, window) in self._budgets:
            return
        spent = await self._baseline(budget_key, window)
        units = check_amount(spent, "baseline spend")
        if (budget_key, window) not in self._budgets:  # another task may have loaded it meanwhile
            self._budgets[(budget_key, window)] = _Budget(total=units, touched=self._clock())

    def _budget(self, budget_key: str, window: str, now: float) -> _Budget:
        budget = self._budgets.get((budget_key, window))
        if budget is None:
            budget = self._budgets[(budget_key, window)] = _Budget()
        budget.touched = now
        while budget.deadlines and budget.deadlines[0][0] <= now:
            _, expired = heapq.heappop(budget.deadlines)
            budget.total -= budget.holds.pop(expired, _NONE)[0]
        return budget

    def _sweep(self, now: float) -> None:
        """Drop past rate windows and idle budget windows whose TTL ran out, once a minute."""
        if now - self._swept < _SWEEP_SECONDS:
            return
        self._swept = now
        rate_index, _ = rate_window(now)
        self._rates = {key: rate for key, rate in self._rates.items() if rate.window >= rate_index}
        for key, budget in list(self._budgets.items()):
            ttl = window_ttl(key[1])
            if ttl is not None and not budget.holds and now - budget.touched > ttl:
                del self._budgets[key]
