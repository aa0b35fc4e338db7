"""Timing every command a Redis client sends: `timed(client, store, observe)` makes the client report
each command's seconds and whether it failed (the metrics' Redis latency and errors)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

CommandObserver = Callable[[str, float, bool], None]  # (store, seconds, ok)


def timed(client: Redis, store: str, observe: CommandObserver) -> None:
    """Route `client`'s commands (scripts included: they run as EVALSHA) through a timer."""
    execute: Callable[..., Awaitable[Any]] = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await execute(*args, **options)
        except RedisError:
            observe(store, time.perf_counter() - started, False)
            raise
        observe(store, time.perf_counter() - started, True)
        return result

    client.execute_command = execute_command  # type: ignore[method-assign]
