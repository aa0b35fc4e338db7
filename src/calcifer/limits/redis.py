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
from typing import cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from calcifer.domain.limits import (
    RATE_WINDOW_SECONDS,
    BaselineSource,
    BudgetExceeded,
    Hold,
    LimiterUnavailable,
    RateDecision,
    Reservation,
    check_amount,
    check_limit,
    from_units,
    rate_decision,
    rate_window,
    window_ttl,
)
from calcifer.limits import _lua
from calcifer.runtime.redis_timing import CommandObserver, timed


class RedisLimiter:
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

    async def reserve(self, budget_key: str, amount: Decimal, limit: Decimal, window: str) -> Reservation:
        return await self.reserve_levels([Hold("key", budget_key, budget_key, limit, window)], amount)

    async def reserve_levels(self, holds: Sequence[Hold], amount: Decimal) -> Reservation:
        units = check_amount(amount)
        limits = [check_limit(hold.limit) for hold in holds]
        if self._baseline is not None:
            for hold in holds:
                if (hold.budget_key, hold.window) not in self._seeded:
                    await self._seed(hold.budget_key, hold.window)
        reservation_id = f"{self._replica}{next(self._ids)}"
        keys: list[str] = []
        args: list[str | int | float] = [self._now(), units, reservation_id, self._reservation_ttl]
        for hold, limit_units in zip(holds, limits, strict=True):
            keys += self._budget_keys(hold.budget_key, hold.window)
            args += [limit_units, _ttl(hold.window)]
        reply = cast(list[object], await self._run("reserve_levels", keys, *args))
        if not reply[0]:
            index = int(str(reply[1])) - 1
            refused = holds[index]
            raise BudgetExceeded(
                from_units(limits[index] - int(str(reply[2]))),
                requested=amount,
                level=refused.level,
                owner=refused.owner,
            )
        parts = tuple((hold.budget_key, hold.window) for hold in holds)
        return Reservation(
            reservation_id,
            holds[0].budget_key,
            holds[0].window,
            amount,
            units,
            parts if len(parts) > 1 else (),
        )

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        charge = reservation.units if actual is None else check_amount(actual, "actual cost")
        await self._finish(reservation, str(charge))

    async def release(self, reservation: Reservation) -> None:
        await self._finish(reservation, "")

    async def spent(self, budget_key: str, window: str) -> Decimal:
        if self._baseline is not None and (budget_key, window) not in self._seeded:
            await self._seed(budget_key, window)
        total = await self._run("spent", self._budget_keys(budget_key, window), self._now())
        return from_units(int(str(total)))

    async def hit(self, rate_key: str, rpm: int | None, tpm: int | None, tokens: int) -> RateDecision:
        if rpm is None and tpm is None:
            now = self._clock() if self._clock is not None else time.time()
            return rate_decision(True, None, None, 0, 0, rate_window(now)[1])
        args: list[str | int | float] = [self._now(), _opt(rpm), _opt(tpm), tokens, RATE_WINDOW_SECONDS]
        reply = cast(list[object], await self._run("hit", [self._rate_key(rate_key)], *args))
        allowed, requests, counted, reset = reply
        return rate_decision(
            bool(allowed), rpm, tpm, int(str(requests)), int(str(counted)), float(str(reset))
        )

    async def add_tokens(self, rate_key: str, tokens: int) -> None:
        if tokens == 0:
            return
        args: list[str | int | float] = [self._now(), tokens, RATE_WINDOW_SECONDS]
        await self._run("add_tokens", [self._rate_key(rate_key)], *args)

    async def _finish(self, reservation: Reservation, charge: str) -> None:
        member = f"{reservation.id}:{reservation.units}"
        keys: list[str] = []
        args: list[str | int | float] = [member, reservation.units, charge]
        for budget_key, window in reservation.parts:
            keys += self._budget_keys(budget_key, window)
            args.append(_ttl(window))
        await self._run("settle_levels", keys, *args)

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
        return f"{self._prefix}rate:{{{rate_key}}}"


_SCRIPTS = {
    "reserve_levels": _lua.RESERVE_LEVELS,
    "settle_levels": _lua.SETTLE_LEVELS,
    "spent": _lua.SPENT,
    "seed": _lua.SEED,
    "hit": _lua.HIT,
    "add_tokens": _lua.ADD_TOKENS,
}


def _ttl(window: str) -> str:
    ttl = window_ttl(window)
    return "" if ttl is None else str(ttl)


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)
