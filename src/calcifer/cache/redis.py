"""`RedisResponseCache`: cached answers shared by every replica, as JSON values with a Redis expiry.

Money is kept as decimal text (never a float). A Redis failure, or a value this version cannot read,
is a miss; a failed write is dropped. Either is logged at most once a minute, never failing a request.
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from redis.exceptions import RedisError

from calcifer.domain.cache import CachedAnswer
from calcifer.domain.types import Usage
from calcifer.runtime.redis_store import BestEffortRedis

_VERSION = 1


class RedisResponseCache(BestEffortRedis):
    """Answers under `prefix` in the Redis at `url` (opened by `start`), each for its time to live."""

    store = "cache"

    def __init__(self, url: str, *, prefix: str = "calcifer:cache:", timeout: float = 0.5) -> None:
        super().__init__(url, prefix=prefix, timeout=timeout)

    async def get(self, key: str) -> CachedAnswer | None:
        if self._client is None:
            return None
        try:
            raw = await self._client.get(self._prefix + key)
        except RedisError as error:
            self._warn("read", error)
            return None
        if raw is None:
            return None
        try:
            return decode(raw)
        except (ValueError, TypeError, KeyError, InvalidOperation) as error:
            self._warn("decode", error)
            return None

    async def put(self, key: str, answer: CachedAnswer, ttl: float) -> None:
        if self._client is None or ttl <= 0:
            return
        try:
            await self._client.set(self._prefix + key, encode(answer), px=max(1, round(ttl * 1000)))
        except RedisError as error:
            self._warn("write", error)

    def _warn(self, what: str, error: Exception) -> None:
        self._warn_once_a_minute(
            "response cache: %s failed (%s); treated as a miss", what, type(error).__name__
        )


def encode(answer: CachedAnswer) -> bytes:
    value = {
        "v": _VERSION,
        "model": answer.model,
        "provider": answer.provider,
        "usage": _usage_out(answer.usage),
        "cost": None if answer.cost is None else format(answer.cost, "f"),
        "body": answer.body,
        "chunks": [[data, _usage_out(usage)] for data, usage in answer.chunks],
        "api": answer.api,
    }
    return orjson.dumps(value)


def decode(raw: bytes | str) -> CachedAnswer:
    value = orjson.loads(raw)
    if value.get("v") != _VERSION:
        raise ValueError("a cache entry of another version")
    cost = value["cost"]
    return CachedAnswer(
        model=str(value["model"]),
        provider=str(value["provider"]),
        usage=_usage_in(value["usage"]),
        cost=None if cost is None else Decimal(cost),
        body=value["body"],
        chunks=tuple((data, _usage_in(usage)) for data, usage in value["chunks"]),
        api=str(value.get("api", "")),
    )


def _usage_out(usage: Usage | None) -> dict[str, Any] | None:
    return None if usage is None else asdict(usage)


def _usage_in(value: dict[str, Any] | None) -> Usage | None:
    return None if value is None else Usage(**value)
