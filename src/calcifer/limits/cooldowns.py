"""`MemoryCooldownStore`: the `CooldownStore` of a single replica (`redis_cooldowns` shares them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping


class MemoryCooldownStore:
    """Cooldowns of this replica only. `clock` gives epoch seconds."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    async def cooling(self, keys: Collection[str]) -> Mapping[str, float]:
        if not self._until:
            return {}
        now = self._clock()
        found: dict[str, float] = {}
        for key in keys:
            until = self._until.get(key)
            if until is None:
                continue
            if until > now:
                found[key] = until
            else:
                del self._until[key]
        return found

    async def cool(self, key: str, seconds: float) -> None:
        until = self._clock() + seconds
        if until > self._until.get(key, 0.0):
            self._until[key] = until
