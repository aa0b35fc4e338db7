"""`MemoryLimiter`: budgets and rate limits held in the process (one gateway instance).

Every check-and-update runs without an `await` between the check and the update, so it is atomic for
all the tasks of the event loop. Counters are integer units of 1e-12 USD, as in the Redis adapter, so
both adapters round and compare identically. Nothing survives a restart except what the optional
`baseline` source reports (the ledger's spend for a window).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from calcifer.domain.limits import (
    BaselineSource,
    BudgetExceeded,
    Hold,
    Rate,
    RateDecision,
    RateLimited,
    Reservation,
    check_amount,
    check_limit,
    from_units,
    rate_decision,
    rate_window,
    window_ttl,
)
from calcifer.limits._calls import OneStepLimiter

_SWEEP_SECONDS = 60.0


@dataclass(slots=True)
class _Budget:
    total: int = 0
    """Settled plus held units."""
    holding: int = 0
    """How many reservations hold units here (a window with any is never swept)."""
    touched: float = 0.0


@dataclass(slots=True)
class _Hold:
    """A reservation in flight: its units are held in each of `budgets` until `deadline`."""

    units: int
    deadline: float
    budgets: list[_Budget]


@dataclass(slots=True)
class _Rate:
    window: int
    requests: int = 0
    tokens: int = 0


class MemoryLimiter(OneStepLimiter):
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
        self._holds: dict[str, _Hold] = {}
        # A heap of (deadline, reservation id); ids no longer in `_holds` are skipped, and the heap is
        # rebuilt from `_holds` when stale entries outnumber live ones. One for every level: a
        # reservation's levels share its deadline.
        self._deadlines: list[tuple[float, str]] = []
        self._rates: dict[str, _Rate] = {}
        self._swept = 0.0
        self._ids = itertools.count()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._budgets.clear()
        self._holds.clear()
        self._deadlines.clear()
        self._rates.clear()

    async def admit(
        self, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], amount: Decimal
    ) -> tuple[list[RateDecision], Reservation | None]:
        units = check_amount(amount) if holds else 0
        limits = [check_limit(hold.limit) for hold in holds]
        if self._baseline is not None:
            for hold in holds:
                if (hold.budget_key, hold.window) not in self._budgets:
                    await self._load(hold.budget_key, hold.window)
        # From here to the end: no await, so the checks and the updates are one step.
        now = self._clock()
        self._sweep(now)
        index, reset = rate_window(now)
        counters = []
        for rate in rates:
            counter = self._rate(rate.rate_key, index)
            if (rate.rpm is not None and counter.requests + 1 > rate.rpm) or (
                rate.tpm is not None and counter.tokens + tokens > rate.tpm
            ):
                decision = rate_decision(False, rate.rpm, rate.tpm, counter.requests, counter.tokens, reset)
                raise RateLimited(decision, tokens=tokens, level=rate.level)
            counters.append(counter)
        reservation = self._hold(holds, limits, amount, units, now) if holds else None
        decisions = []
        for rate, counter in zip(rates, counters, strict=True):
            counter.requests += 1
            counter.tokens += tokens
            decisions.append(rate_decision(True, rate.rpm, rate.tpm, counter.requests, counter.tokens, reset))
        return decisions, reservation

    def _hold(
        self, holds: Sequence[Hold], limits: list[int], amount: Decimal, units: int, now: float
    ) -> Reservation:
        """Hold `units` at every level, or raise `BudgetExceeded` for the first it does not fit in."""
        self._expire(now)
        budgets = [self._budget(hold.budget_key, hold.window, now) for hold in holds]
        for hold, budget, limit_units in zip(holds, budgets, limits, strict=True):
            if budget.total + units > limit_units:
                raise BudgetExceeded(
                    from_units(limit_units - budget.total),
                    requested=amount,
                    level=hold.level,
                    owner=hold.owner,
                )
        parts = tuple((hold.budget_key, hold.window) for hold in holds) if len(holds) > 1 else ()
        first = holds[0]
        reservation_id = str(next(self._ids))  # unique in this process, which is all that sees it
        reservation = Reservation(reservation_id, first.budget_key, first.window, amount, units, parts)
        for budget in budgets:
            budget.total += units
            budget.holding += 1
        deadline = now + self._reservation_ttl
        self._holds[reservation_id] = _Hold(units, deadline, budgets)
        if len(self._deadlines) > 2 * len(self._holds) + 64:
            self._deadlines = [(held.deadline, key) for key, held in self._holds.items()]
            heapq.heapify(self._deadlines)
        else:
            heapq.heappush(self._deadlines, (deadline, reservation_id))
        return reservation

    async def finish(
        self,
        reservation: Reservation | None,
        actual: Decimal | None,
        *,
        release: bool,
        rates: Sequence[Rate],
        tokens: int,
    ) -> None:
        charge = 0
        if reservation is not None and not release:
            charge = reservation.units if actual is None else check_amount(actual, "actual cost")
        now = self._clock()
        if reservation is not None:
            held = self._holds.pop(reservation.id, None)
            if held is not None:
                for budget in held.budgets:
                    budget.total += (0 if release else charge) - held.units
                    budget.holding -= 1
                    budget.touched = now
            elif not release:  # its hold expired (or it was settled before): charge it all the same
                for budget_key, window in reservation.parts:
                    self._budget(budget_key, window, now).total += charge
        if tokens:
            index, _ = rate_window(now)
            for rate in rates:
                counter = self._rate(rate.rate_key, index)
                counter.tokens = max(counter.tokens + tokens, 0)

    def _seconds(self) -> float:
        return self._clock()

    async def spent(self, budget_key: str, window: str) -> Decimal:
        await self._load(budget_key, window)
        now = self._clock()
        self._expire(now)
        return from_units(self._budget(budget_key, window, now).total)

    async def _load(self, budget_key: str, window: str) -> None:
        if self._baseline is None or (budget_key, window) in self._budgets:
            return
        spent = await self._baseline(budget_key, window)
        units = check_amount(spent, "baseline spend")
        if (budget_key, window) not in self._budgets:  # another task may have loaded it meanwhile
            self._budgets[(budget_key, window)] = _Budget(total=units, touched=self._clock())

    def _rate(self, rate_key: str, index: int) -> _Rate:
        """The counters of `rate_key`'s window `index`, fresh when its last window has passed."""
        rate = self._rates.get(rate_key)
        if rate is None or rate.window != index:
            rate = self._rates[rate_key] = _Rate(index)
        return rate

    def _budget(self, budget_key: str, window: str, now: float) -> _Budget:
        budget = self._budgets.get((budget_key, window))
        if budget is None:
            budget = self._budgets[(budget_key, window)] = _Budget()
        budget.touched = now
        return budget

    def _expire(self, now: float) -> None:
        """Give back the units of every hold whose deadline has passed, at each of its levels."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, expired = heapq.heappop(deadlines)
            held = self._holds.pop(expired, None)
            if held is not None:
                for budget in held.budgets:
                    budget.total -= held.units
                    budget.holding -= 1

    def _sweep(self, now: float) -> None:
        """Drop past rate windows and idle budget windows whose TTL ran out, once a minute."""
        if now - self._swept < _SWEEP_SECONDS:
            return
        self._swept = now
        rate_index, _ = rate_window(now)
        self._rates = {key: rate for key, rate in self._rates.items() if rate.window >= rate_index}
        for key, budget in list(self._budgets.items()):
            ttl = window_ttl(key[1])
            if ttl is not None and not budget.holding and now - budget.touched > ttl:
                del self._budgets[key]
