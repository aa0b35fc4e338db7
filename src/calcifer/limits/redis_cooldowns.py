"""`RedisCooldownStore`: deployments' cooldowns shared by every replica.

A cooldown is a key that exists until it ends, with a millisecond expiry, so Redis forgets it on time
whatever the replicas' clocks say; its value (the epoch second it ends) only tells a client how long to
wait. A Redis failure must never fail a request: the store then answers "nothing is cooling down" and
drops the write, and says so in the log (at most once a minute).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping

from redis.exceptions import RedisError

from calcifer.runtime.redis_store import BestEffortRedis

# Set the cooldown unless a longer one is already running. KEYS[1]; ARGV: ends-at (epoch s), ttl (ms).
_COOL = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisCooldownStore(BestEffortRedis):
    """Cooldowns every replica sees, under `prefix` in the Redis at `url` (opened by `start`)."""

    store = "cooldowns"

    def __init__(self, url: str, *, prefix: str = "calcifer:cooldown:", timeout: float = 0.5) -> None:
        super().__init__(url, prefix=prefix, timeout=timeout)

    async def cooling(self, keys: Collection[str]) -> Mapping[str, float]:
        if self._client is None or not keys:
            return {}
        names = list(keys)
        try:
            values = await self._client.mget([self._prefix + k for k in names])
        except RedisError as error:
            self._warn(error)
            return {}
        found: dict[str, float] = {}
        for key, value in zip(names, values, strict=True):
            if value is not None:
                try:
                    found[key] = float(value)
                except ValueError:
                    found[key] = time.time()
        return found

    async def cool(self, key: str, seconds: float) -> None:
        if self._client is None or seconds <= 0:
            return
        until = time.time() + seconds
        try:
            await self._client.eval(_COOL, 1, self._prefix + key, repr(until), max(1, round(seconds * 1000)))
        except RedisError as error:
            self._warn(error)

    def _warn(self, error: RedisError) -> None:
        self._warn_once_a_minute(
            "cooldowns: Redis failed (%s); deployments are not skipped meanwhile", type(error).__name__
        )
