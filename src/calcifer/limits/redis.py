"""`RedisLimiter`: budgets and rate limits shared by every gateway replica through Redis.

Each check-and-update is one Lua script (see `_lua.py`), so it is atomic across replicas. Scripts are
loaded once at start and then called by SHA (redis-py reloads one after a Redis restart). Every key
starts with `prefix` and carries a hash tag, so that a script's keys share a cluster slot and tenants
or tests never clash. Budget windows expire `window_ttl(window)` after their last write, rate windows
two minutes after theirs. A Redis error becomes `LimiterUnavailable`: requests fail closed.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from calcifer.domain.limits import (
    RATE_WINDOW_SECONDS,
    BaselineSource,
    BudgetExceeded,
    Hold,
    LimiterUnavailable,
    Rate,
    RateDecision,
    RateLimited,
    Reservation,
    check_amount,
    check_limit,
    from_units,
    rate_decision,
    window_ttl,
)
from calcifer.limits import _lua
from calcifer.limits._calls import OneStepLimiter
from calcifer.runtime.redis_timing import CommandObserver, timed


class RedisLimiter(OneStepLimiter):
    """The `Limiter` for many replicas.

    `url` is a `redis://` or `rediss://` URL. `clock` gives seconds since the epoch; None (the default)
    takes time from the Redis server, so replicas agree on windows even when their clocks differ.
    `reservation_ttl` is how long a hold outlives a request that never settles it (a replica that
    died); it must outlast the longest request. `baseline` fills a budget window Redis has no state for.
    At most `max_connections` commands are in flight; more wait for a connection up to `timeout`
    seconds, which also bounds connecting and each reply.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "calcifer:",
        clock: Callable[[], float] | None = None,
        reservation_ttl: float = 3600.0,
        baseline: BaselineSource | None = None,
        max_connections: int = 64,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self._max_connections = max_connections
        self._timeout = timeout
        self._prefix = prefix
        self._clock = clock
        self._reservation_ttl = reservation_ttl
        self._baseline = baseline
        self._seeded: set[tuple[str, str]] = set()
        # Reservation ids: this process's random 64 bits and a count, unique across replicas without
        # a uuid4 (a system call and 15k instructions) per request.
        self._replica = uuid.uuid4().hex[:16] + "-"
        self._ids = itertools.count()
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self.on_command: CommandObserver | None = None  # set before `start` to time every command

    async def start(self) -> None:
        if self._client is not None:
            return
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=self._max_connections,
            timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            decode_responses=True,
        )
        client = Redis.from_pool(pool)
        if self.on_command is not None:
            timed(client, "limiter", self.on_command)
        try:
            await client.ping()
            for name, source in _SCRIPTS.items():
                await client.script_load(source)
                self._scripts[name] = client.register_script(source)
        except RedisError as error:
            await client.aclose()
            raise LimiterUnavailable(f"The limiter cannot reach Redis: {type(error).__name__}.") from error
        self._client = client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def admit(
        self, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], amount: Decimal
    ) -> tuple[list[RateDecision], Reservation | None]:
        units = check_amount(amount) if holds else 0
        limits = [check_limit(hold.limit) for hold in holds]
        if self._baseline is not None:
            for hold in holds:
                if (hold.budget_key, hold.window) not in self._seeded:
                    await self._seed(hold.budget_key, hold.window)
        keys = [self._rate_key(rate.rate_key) for rate in rates]
        args: list[str | int | float] = [self._now(), tokens, RATE_WINDOW_SECONDS, len(rates)]
        for rate in rates:
            args += [_opt(rate.rpm), _opt(rate.tpm)]
        reservation_id = ""
        if holds:
            reservation_id = f"{self._replica}{next(self._ids)}"
            args += [units, reservation_id, self._reservation_ttl]
            for hold, limit_units in zip(holds, limits, strict=True):
                keys += self._budget_keys(hold.budget_key, hold.window)
                args += [limit_units, _ttl(hold.window)]
        reply = cast(list[Any], await self._run("admit", keys, *args))
        if reply[0] == 0:
            rate = rates[int(reply[1]) - 1]
            decision = rate_decision(False, rate.rpm, rate.tpm, int(reply[2]), int(reply[3]), float(reply[4]))
            raise RateLimited(decision, tokens=tokens, level=rate.level)
        if reply[0] == 2:
            index = int(reply[1]) - 1
            refused = holds[index]
            raise BudgetExceeded(
                from_units(limits[index] - int(reply[2])),
                requested=amount,
                level=refused.level,
                owner=refused.owner,
            )
        reset = float(reply[1])
        decisions = [
            rate_decision(True, rate.rpm, rate.tpm, int(reply[2 * i + 2]), int(reply[2 * i + 3]), reset)
            for i, rate in enumerate(rates)
        ]
        if not holds:
            return decisions, None
        parts = tuple((hold.budget_key, hold.window) for hold in holds)
        reservation = Reservation(
            reservation_id,
            holds[0].budget_key,
            holds[0].window,
            amount,
            units,
            parts if len(parts) > 1 else (),
        )
        return decisions, reservation

    async def finish(
        self,
        reservation: Reservation | None,
        actual: Decimal | None,
        *,
        release: bool,
        rates: Sequence[Rate],
        tokens: int,
    ) -> None:
        if tokens == 0:
            rates = ()
        if reservation is None and not rates:
            return
        keys: list[str] = []
        args: list[str | int | float] = [self._now(), tokens, RATE_WINDOW_SECONDS]
        if reservation is None:
            args += [0, "", 0, ""]
        else:
            units = reservation.units
            charge = "" if release else str(units if actual is None else check_amount(actual, "actual cost"))
            args += [len(reservation.parts), f"{reservation.id}:{units}", units, charge]
            for budget_key, window in reservation.parts:
                keys += self._budget_keys(budget_key, window)
                args.append(_ttl(window))
        keys += [self._rate_key(rate.rate_key) for rate in rates]
        await self._run("finish", keys, *args)

    def _seconds(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    async def spent(self, budget_key: str, window: str) -> Decimal:
        if self._baseline is not None and (budget_key, window) not in self._seeded:
            await self._seed(budget_key, window)
        total = await self._run("spent", self._budget_keys(budget_key, window), self._now())
        return from_units(int(str(total)))

    async def _seed(self, budget_key: str, window: str) -> None:
        assert self._baseline is not None
        keys = self._budget_keys(budget_key, window)
        if not await self._exists(keys[0]):
            units = check_amount(await self._baseline(budget_key, window), "baseline spend")
            await self._run("seed", keys[:1], units, _ttl(window))
        self._seeded.add((budget_key, window))

    async def _exists(self, key: str) -> bool:
        try:
            return bool(await self._connected().exists(key))
        except RedisError as error:
            raise LimiterUnavailable(f"The limiter cannot reach Redis: {type(error).__name__}.") from error

    async def _run(self, script: str, keys: Sequence[str], *args: str | int | float) -> object:
        self._connected()
        try:
            return cast(object, await self._scripts[script](keys=keys, args=args))
        except RedisError as error:
            raise LimiterUnavailable(f"The limiter cannot reach Redis: {type(error).__name__}.") from error

    def _connected(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisLimiter used before start() or after aclose()")
        return self._client

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock()))

    def _budget_keys(self, budget_key: str, window: str) -> list[str]:
        # One hash tag for every budget: a reservation's levels are updated by one script, whose keys
        # must share a slot on Redis Cluster.
        base = f"{self._prefix}budget:{{budgets}}:{budget_key}|{window}"
        return [base, base + ":holds"]

    def _rate_key(self, rate_key: str) -> str:
        # The budgets' hash tag: one script counts a request's rates and holds its budget.
        return f"{self._prefix}rate:{{budgets}}:{rate_key}"


_SCRIPTS = {
    "admit": _lua.ADMIT,
    "finish": _lua.FINISH,
    "spent": _lua.SPENT,
    "seed": _lua.SEED,
}


def _ttl(window: str) -> str:
    ttl = window_ttl(window)
    return "" if ttl is None else str(ttl)


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)
