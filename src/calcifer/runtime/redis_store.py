"""What the best-effort Redis stores (cooldowns, the response cache) share: one client opened at
start-up and closed at shutdown, and a warning at most once a minute while Redis fails."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from calcifer.runtime.redis_timing import CommandObserver, timed

_log = logging.getLogger("calcifer")


class BestEffortRedis:
    store = "redis"  # the `store` label of its commands' metrics
    on_command: CommandObserver | None = None  # set before `start` to time every command

    def __init__(self, url: str, *, prefix: str, timeout: float) -> None:
        self._url = url
        self._prefix = prefix
        self._timeout = timeout
        self._client: Redis | None = None
        self._warned = 0.0

    async def start(self) -> None:
        if self._client is None:
            self._client = Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
            if self.on_command is not None:
                timed(self._client, self.store, self.on_command)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> None:
        """Redis answers PING (the `Reachable` port: readiness); raises when it does not."""
        if self._client is None:
            raise RuntimeError("not started")
        await self._client.ping()

    def _warn_once_a_minute(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if not self._warned or now - self._warned >= 60:
            self._warned = now
            _log.warning(message, *args)
