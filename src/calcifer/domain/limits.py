"""Hard budgets and rate limits: the values, the pure helpers and the `Limiter` port.

A budget is enforced by reservation, never by checking first and charging later: before a request goes
upstream its worst-case cost is *reserved* atomically against what is left of the budget; when it ends
the reservation is *settled* to the real cost (or *released* when it failed). Concurrent requests,
on one replica or many, therefore can never spend more than the budget.

Money is `Decimal`. Adapters count it as integer *units* of 1e-12 USD, the cost quantum of
`domain/cost.py`, so a cost is stored exactly. Amounts are rounded so that a budget is never
overrun by rounding: reservations and charges round up to the next unit, the limit rounds down.
An integer count of units is exact in a signed 64-bit integer (Redis' INCRBY) up to 9.2e18 units,
i.e. $9.2M: budgets above `MAX_BUDGET` are refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal, Protocol, get_args, runtime_checkable

from calcifer.domain.errors import GatewayError

BudgetPeriod = Literal["total", "daily", "weekly", "monthly"]
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = get_args(BudgetPeriod)

UNIT_EXPONENT = 12
"""Money is counted in units of 10**-UNIT_EXPONENT USD (1e-12, the cost quantum)."""
MAX_BUDGET = Decimal(9_000_000)
"""The largest budget (USD) whose units stay exact in a signed 64-bit integer, with headroom."""
RATE_WINDOW_SECONDS = 60
"""Rate limits count per fixed, minute-aligned window."""

_DAY = 86_400

BaselineSource = Callable[[str, str], Awaitable[Decimal]]
"""`(budget_key, window) -> USD already spent`, e.g. summed from the ledger over `window_bounds(window)`.

An adapter asks it once per budget window it has no counters for (a fresh process, an emptied Redis),
so that a restart does not forget what was spent.
"""


def to_units(amount: Decimal, *, round_up: bool = True) -> int:
    """`amount` USD as integer units of 1e-12 USD; rounds up unless `round_up` is False (then down)."""
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    return int(amount.scaleb(UNIT_EXPONENT).to_integral_value(rounding=rounding))


def from_units(units: int) -> Decimal:
    """Integer units of 1e-12 USD back to USD, exactly."""
    return Decimal(units).scaleb(-UNIT_EXPONENT)


_MAX_UNITS = to_units(MAX_BUDGET)


def check_amount(amount: Decimal, what: str = "amount") -> int:
    """Units of a non-negative amount to reserve or charge, rounded up; ValueError when out of range."""
    if amount.is_signed() and amount != 0:
        raise ValueError(f"{what} must not be negative, not {amount}")
    units = to_units(amount)
    if units > _MAX_UNITS:
        raise ValueError(f"{what} {amount} exceeds the largest supported budget of ${MAX_BUDGET}")
    return units


@functools.lru_cache(maxsize=4096)
def check_limit(limit: Decimal) -> int:
    """Units of a budget limit, rounded down; ValueError when negative or above `MAX_BUDGET`.

    Cached: a request's limits are the same few values each time (a ValueError is not cached)."""
    if limit.is_signed() and limit != 0:
        raise ValueError(f"budget limit must not be negative, not {limit}")
    if limit > MAX_BUDGET:
        raise ValueError(f"budget limit {limit} exceeds the largest supported budget of ${MAX_BUDGET}")
    return to_units(limit, round_up=False)


def _utc(now: datetime) -> datetime:
    return now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)


def budget_window(period: BudgetPeriod, now: datetime | float) -> str:
    """The id of the budget window `now` falls in: "total", "YYYY-MM-DD" (daily), "YYYY-Www" (weekly:
    the ISO week, from Monday) or "YYYY-MM" (monthly).

    Windows are calendar periods in UTC. `now` is an aware datetime (a naive one is taken as UTC) or
    seconds since the epoch, as `Clock.now()` gives.
    """
    if period == "total":
        return "total"
    if not isinstance(now, datetime):
        # Every window starts at a UTC midnight, so the day's number names it: a cached lookup
        # instead of a datetime and strftime per call (three per budgeted request).
        return _day_window(period, int(now // _DAY))
    return _window(period, _utc(now))


@functools.lru_cache(maxsize=64)
def _day_window(period: BudgetPeriod, day: int) -> str:
    return _window(period, datetime.fromtimestamp(day * _DAY, UTC))


def _window(period: BudgetPeriod, moment: datetime) -> str:
    if period == "daily":
        return moment.strftime("%Y-%m-%d")
    if period == "weekly":
        return moment.strftime("%G-W%V")
    if period == "monthly":
        return moment.strftime("%Y-%m")
    raise ValueError(f"unknown budget period {period!r}; expected one of {', '.join(BUDGET_PERIODS)}")


def window_bounds(window: str) -> tuple[datetime | None, datetime | None]:
    """The UTC interval [start, end) a window id covers; (None, None) for "total".

    A ledger uses it to sum the spend already recorded in a window (see `BaselineSource`).
    """
    if window == "total":
        return None, None
    if len(window) == 10:
        start = datetime.strptime(window, "%Y-%m-%d").replace(tzinfo=UTC)
        return start, start + timedelta(days=1)
    if len(window) == 8 and window[5] == "W":
        start = datetime.strptime(window + "-1", "%G-W%V-%u").replace(tzinfo=UTC)
        return start, start + timedelta(days=7)
    if len(window) == 7:
        start = datetime.strptime(window, "%Y-%m").replace(tzinfo=UTC)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start, end
    raise ValueError(f"not a budget window id: {window!r}")


@functools.lru_cache(maxsize=256)
def window_ttl(window: str) -> int | None:
    """How long (seconds) an adapter keeps a window's counters after their last write; None = forever.

    Each write refreshes it and the write happens inside the window, so a TTL longer than the window
    keeps the counters for the whole window and lets them go soon after.
    """
    start, end = window_bounds(window)
    if start is None or end is None:
        return None
    return int((end - start).total_seconds()) + 2 * _DAY


def rate_window(now: float) -> tuple[int, float]:
    """The fixed rate window `now` falls in, and the seconds left until it resets."""
    index = int(now // RATE_WINDOW_SECONDS)
    return index, (index + 1) * RATE_WINDOW_SECONDS - now


def format_usd(amount: Decimal) -> str:
    """A USD amount for a message: at least cents, no trailing zeros past them, never exponent form."""
    text = f"{amount.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class Hold:
    """One level's budget that a reservation must fit in: `level` names the kind ("key", "team", "user",
    "member", "customer", "tag") and `owner` which one, for the refusal's message; `budget_key` is its
    counter, `window` the period's window id (`budget_window`)."""

    level: str
    owner: str
    budget_key: str
    limit: Decimal
    window: str


@dataclass(frozen=True, slots=True)
class Rate:
    """One level's rate limits: `level` names the kind ("key" or "team") for the refusal's message,
    `rate_key` its counter; at least one of `rpm` and `tpm` is set (None = no limit in that dimension)."""

    level: str
    rate_key: str
    rpm: int | None
    tpm: int | None


@functools.lru_cache(maxsize=4096)
def rate_at(level: str, owner: str, rpm: int | None, tpm: int | None) -> Rate:
    """The `Rate` of `level`'s `owner` (a key's or a team's id). Cached: a request's limits are the same
    few each time, and building a frozen dataclass per request costs more than the lookup."""
    return Rate(level, f"{level}:{owner}", rpm, tpm)


@dataclass(slots=True)  # not frozen: built for every budgeted request, and frozen costs 2.3x to build
class Reservation:
    """Budget held for one in-flight request; `units` is `amount` in 1e-12 USD, as the adapter holds it.

    `levels` lists every (budget_key, window) the same hold was taken at (empty: only the first's);
    settling or releasing the reservation does so at every one of them."""

    id: str
    budget_key: str
    window: str
    amount: Decimal
    units: int
    levels: tuple[tuple[str, str], ...] = ()

    @property
    def parts(self) -> tuple[tuple[str, str], ...]:
        return self.levels or ((self.budget_key, self.window),)


@dataclass(slots=True)  # not frozen: built for every rate-limited request (see Reservation)
class RateDecision:
    """The outcome of one `Limiter.hit`, with what the `x-ratelimit-*` headers report.

    `limit_*`/`remaining_*` are None for a dimension that has no limit. `reset_*` are the seconds until
    the window resets. `retry_after` (seconds) is set only when the request was refused.
    """

    allowed: bool
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests: float
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens: float
    retry_after: float | None = None


def rate_decision(
    allowed: bool, rpm: int | None, tpm: int | None, requests: int, tokens: int, reset: float
) -> RateDecision:
    """A decision from a window's counts (after this hit when allowed, before it when refused)."""
    return RateDecision(
        allowed=allowed,
        limit_requests=rpm,
        remaining_requests=None if rpm is None else max(rpm - requests, 0),
        reset_requests=reset,
        limit_tokens=tpm,
        remaining_tokens=None if tpm is None else max(tpm - tokens, 0),
        reset_tokens=reset,
        retry_after=None if allowed else reset,
    )


class BudgetExceeded(GatewayError):
    """The request's worst-case cost does not fit in what is left of the budget (HTTP 429)."""

    kind = "budget_exceeded"
    code = "budget_exceeded"
    refusal = "budget"

    def __init__(
        self,
        remaining: Decimal,
        *,
        requested: Decimal | None = None,
        level: str = "key",
        owner: str | None = None,
    ) -> None:
        remaining = max(remaining, Decimal(0))
        budget = (
            "the budget" if level == "key" else f"the {level} budget" + (f" of '{owner}'" if owner else "")
        )
        message = f"Budget exceeded: {format_usd(remaining)} of {budget} remains"
        if requested is not None:
            message += f", and this request may cost up to {format_usd(requested)}"
        super().__init__(message + ".")
        self.remaining = remaining
        self.requested = requested
        self.level = level
        """Which level refused: "key", "team", "user", "member", "customer" or "tag"."""
        self.owner = owner


class RateLimited(GatewayError):
    """A rate limit refused the request (HTTP 429 with `Retry-After` from `decision.retry_after`)."""

    kind = "rate_limit_error"
    code = "rate_limit_exceeded"
    refusal = "rate_limit"

    def __init__(self, decision: RateDecision, *, tokens: int = 0, level: str = "key") -> None:
        parts = []
        if decision.limit_requests is not None and decision.remaining_requests == 0:
            parts.append(f"{decision.limit_requests} requests per minute")
        if decision.remaining_tokens is not None and tokens > decision.remaining_tokens:
            parts.append(f"{decision.limit_tokens} tokens per minute (this request needs {tokens})")
        what = " and ".join(parts) or "the rate limit"
        wait = decision.retry_after if decision.retry_after is not None else decision.reset_requests
        whose = "" if level == "key" else f" of the {level}"
        super().__init__(f"Rate limit reached: {what}{whose}. Try again in {max(math.ceil(wait), 1)}s.")
        self.decision = decision
        self.level = level


class LimiterUnavailable(GatewayError):
    """The shared limiter state (Redis) cannot be reached: requests fail closed (HTTP 503)."""

    kind = "server_error"
    code = "limiter_unavailable"


@runtime_checkable
class Limiter(Protocol):
    """Budget reservations and rate counters, atomic across every task (and replica) sharing them."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def admit(
        self, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], amount: Decimal
    ) -> tuple[list[RateDecision], Reservation | None]:
        """Admit one request, atomically and in one step (one script on Redis): count it, with `tokens`
        (estimated) tokens, at every one of `rates`, and hold `amount` USD at every one of `holds`.

        All or nothing: `RateLimited` names the first rate that refuses (in the order given) and
        `BudgetExceeded` the first budget level; either way no counter moves and nothing is held. Rates
        are checked before budgets. Returns each rate's decision (in order) and the reservation (None
        when `holds` is empty)."""
        ...

    async def finish(
        self,
        reservation: Reservation | None,
        actual: Decimal | None,
        *,
        release: bool,
        rates: Sequence[Rate],
        tokens: int,
    ) -> None:
        """Close one request in one step (one script on Redis): `settle` the reservation to `actual`
        (or `release` it), and correct the token count of every one of `rates` by `tokens`
        (`add_tokens`). Exactly once per admitted request."""
        ...

    async def reserve(self, budget_key: str, amount: Decimal, limit: Decimal, window: str) -> Reservation:
        """Hold `amount` USD of `limit` for `window`, atomically; `BudgetExceeded` if it cannot fit."""
        ...

    async def reserve_levels(self, holds: Sequence[Hold], amount: Decimal) -> Reservation:
        """Hold `amount` USD at every one of `holds` at once, atomically: all or none. `BudgetExceeded`
        names the first level it cannot fit in (in the order given) and what is left there."""
        ...

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        """Replace the reservation by the real cost.

        `actual` None means the request could not be priced: it is charged at the reserved worst
        case, never at 0, because an unpriced request did cost money and the worst case is the only
        bound known to cover it; charging 0 would let unpriced traffic spend past a hard budget.
        Call exactly one of `settle` or `release`, once, per reservation. A hold is removed at most
        once; a reservation whose hold expired (see the adapters' `reservation_ttl`) is still charged.
        """
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the request failed before it cost anything); idempotent."""
        ...

    async def spent(self, budget_key: str, window: str) -> Decimal:
        """What the window holds: settled costs plus reservations still in flight."""
        ...

    async def hit(self, rate_key: str, rpm: int | None, tpm: int | None, tokens: int) -> RateDecision:
        """Count one request of `tokens` (estimated) tokens against `rpm`/`tpm` (None = unlimited).

        Both counters move together or not at all: a refused request counts nothing.
        """
        ...

    async def add_tokens(self, rate_key: str, tokens: int) -> None:
        """Correct the current window's token count once real usage is known (`tokens` may be < 0)."""
        ...
