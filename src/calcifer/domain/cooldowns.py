"""Cooldowns: a deployment that keeps failing, or that asked us to wait (`Retry-After`), is skipped.

The policy is here; where cooldowns are kept is a port (`CooldownStore`): in memory for one replica, in
Redis when several replicas must agree. Consecutive failures are counted by each replica (cheap, no
round trip on success); the cooldown they trigger is written to the store, so every replica skips it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from calcifer.domain.deployments import DeploymentStats
from calcifer.domain.errors import ProviderError


@runtime_checkable
class CooldownStore(Protocol):
    """Where deployments' cooldowns are kept. A store that fails answers "nothing is cooling down"."""

    async def cooling(self, keys: Collection[str]) -> Mapping[str, float]:
        """The keys among `keys` that are cooling down, each with the epoch second its cooldown ends."""
        ...

    async def cool(self, key: str, seconds: float) -> None:
        """Skip `key` for the next `seconds` (a longer cooldown already running is kept)."""
        ...


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """`failures` retryable failures within `window` seconds cool a deployment for `seconds`; a
    `Retry-After` cools it for that long (at most `max_seconds`)."""

    failures: int = 3
    window: float = 60.0
    seconds: float = 30.0
    max_seconds: float = 300.0

    def after_failure(self, stats: DeploymentStats, error: ProviderError, now: float) -> float | None:
        """Seconds to cool the deployment for after `error`, or None to keep using it."""
        if not error.retryable:
            return None
        if error.retry_after is not None and error.retry_after > 0:
            stats.failures = 0
            return min(error.retry_after, self.max_seconds)
        if stats.failures == 0 or now - stats.first_failure > self.window:
            stats.failures, stats.first_failure = 0, now
        stats.failures += 1
        if stats.failures >= self.failures:
            stats.failures = 0
            return self.seconds
        return None

    @staticmethod
    def after_success(stats: DeploymentStats) -> None:
        stats.failures = 0
