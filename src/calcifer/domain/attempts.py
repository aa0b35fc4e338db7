"""One request's attempts: the deployments of its route in strategy order, then its fallbacks, within one
deadline, skipping deployments that are cooling down.

The failover policy: a retryable failure (429, 5xx, timeout, broken connection) moves on to the next
deployment at once, and may start a cooldown; only the last candidate left is retried in place, with
its provider's backoff policy (so a model with one deployment and no fallbacks behaves as before). A
prompt too long for a model's context window moves to the route's `context_fallbacks`. Any other
upstream rejection (a 4xx) goes back to the client as it is: another deployment would refuse it too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from calcifer.domain.cache import CacheRule
from calcifer.domain.cooldowns import CooldownPolicy, CooldownStore
from calcifer.domain.deployments import Deployment, Route
from calcifer.domain.errors import (
    GatewayError,
    ProviderError,
    ProviderNotConfigured,
    UpstreamRejected,
    UpstreamTimeout,
)
from calcifer.domain.ports import Clock
from calcifer.domain.retry import RetryPolicy

T = TypeVar("T")

# How providers say a prompt does not fit the model's context window (OpenAI's code; Anthropic's,
# Gemini's and OpenAI-compatible servers' messages).
_OVERFLOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_OVERFLOW_WORDS = (
    "context length",
    "context window",
    "context_length",
    "prompt is too long",
    "exceeds the maximum number of tokens",
    "maximum context",
)


class DeadlineExceeded(UpstreamTimeout):
    """The request's overall deadline (`request_timeout`) passed before any deployment answered."""

    code = "request_timeout"


class NoDeployment(ProviderError):
    """Every deployment of the route is cooling down or at its limit."""

    kind = "service_unavailable"
    code = "no_deployment_available"
    retryable = True
    http_status = 503


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Routing declared at start-up: routes by requested model, the cooldown policy, the overall
    deadline per request (seconds; None: none), and which models cache their answers."""

    routes: Mapping[str, Route] = field(default_factory=dict)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    request_timeout: float | None = None
    cache_rules: Mapping[str, CacheRule] = field(default_factory=dict)
    cache_default: CacheRule = field(default_factory=CacheRule)


def context_overflow(error: ProviderError) -> bool:
    if not isinstance(error, UpstreamRejected):
        return False
    if error.code in _OVERFLOW_CODES:
        return True
    message = error.message.lower()
    return any(words in message for words in _OVERFLOW_WORDS)


OnAttempt = Callable[[Deployment, int], None]


class Attempts:
    """Runs a call against a route's deployments until one answers (see the module's policy)."""

    def __init__(
        self,
        config: RoutingConfig,
        clock: Clock,
        cooldowns: CooldownStore | None,
        policies: Mapping[str, RetryPolicy],
        default_policy: RetryPolicy,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._clock = clock
        self._cooldowns = cooldowns
        self._policies = policies
        self._default_policy = default_policy
        self._rand = rand

    async def run(
        self, route: Route, call: Callable[[Deployment], Awaitable[T]], on_attempt: OnAttempt
    ) -> tuple[T, Deployment]:
        """The first answer of `call(deployment)`; the deployment stays counted in flight (the caller
        releases it). `on_attempt(deployment, n)` is told of each attempt as it starts."""
        clock = self._clock
        timeout = self._config.request_timeout
        deadline = None if timeout is None else clock.now() + timeout
        shared = route.shared and self._cooldowns is not None
        cooling: Mapping[str, float] = {}
        if shared:
            assert self._cooldowns is not None
            cooling = await self._cooldowns.cooling(route.keys)
        candidates = self._candidates(route, cooling, overflowed=False)
        if not candidates:
            raise _all_cooling(route, cooling, clock.now())
        attempts = 0
        overflowed = False
        last_error: GatewayError | None = None
        index = 0
        while index < len(candidates):
            target = candidates[index]
            index += 1
            provider = target.provider
            keyed = target.credentialed
            if keyed is not None and not keyed.configured:
                last_error = last_error or ProviderNotConfigured(provider.name, keyed.credential_setting)
                continue
            retry = 0
            while True:
                remaining = None if deadline is None else deadline - clock.now()
                if remaining is not None and remaining <= 0:
                    raise _late(timeout, attempts, last_error)
                attempts += 1
                on_attempt(target, attempts)
                try:
                    result = await self._attempt(target, call, remaining)
                except TimeoutError:
                    if deadline is None:
                        raise
                    raise _late(timeout, attempts, last_error) from None
                except ProviderError as error:
                    last_error = error
                    if shared:
                        await self._failed(target, error)
                    if not overflowed and route.context_fallbacks and context_overflow(error):
                        overflowed = True
                        candidates, index = self._candidates(route, cooling, overflowed=True), 0
                        break
                    if not error.retryable:
                        raise
                    if index < len(candidates):
                        break  # fail over to the next candidate at once
                    retry += 1
                    await self._backoff(provider.name, retry, error, deadline)
                    continue
                if shared:
                    self._config.cooldown.after_success(target.stats)
                return result, target
        assert last_error is not None
        raise last_error

    def _candidates(
        self, route: Route, cooling: Mapping[str, float], *, overflowed: bool
    ) -> list[Deployment]:
        now = self._clock.now()
        found: list[Deployment] = []
        for group in route.chain(overflowed):
            found += [d for d in group.order(self._rand, now, cooling) if d not in found]
        return found

    async def _attempt(
        self, target: Deployment, call: Callable[[Deployment], Awaitable[T]], remaining: float | None
    ) -> T:
        stats = target.stats
        started = self._clock.now()
        stats.count_request(started)
        stats.in_flight += 1
        answered = False
        try:
            if remaining is None:
                result = await call(target)
            else:
                async with asyncio.timeout(remaining):
                    result = await call(target)
            answered = True
        finally:
            if not answered:
                stats.in_flight -= 1
        stats.observe(self._clock.now() - started)
        return result

    async def _failed(self, target: Deployment, error: ProviderError) -> None:
        assert self._cooldowns is not None
        seconds = self._config.cooldown.after_failure(target.stats, error, self._clock.now())
        if seconds:
            await self._cooldowns.cool(target.key, seconds)

    async def _backoff(self, provider: str, retry: int, error: ProviderError, deadline: float | None) -> None:
        policy = self._policies.get(provider, self._default_policy)
        delay = policy.delay(retry, error, self._rand())
        if delay is None or (deadline is not None and self._clock.now() + delay >= deadline):
            raise error
        await self._clock.sleep(delay)


def _late(timeout: float | None, attempts: int, last: GatewayError | None) -> DeadlineExceeded:
    why = f"; the last error: {last.message}" if last is not None else ""
    return DeadlineExceeded(
        f"No answer within the gateway's request timeout of {timeout or 0:g}s ({attempts} attempts{why}).",
        status=504,
    )


def _all_cooling(route: Route, cooling: Mapping[str, float], now: float) -> NoDeployment:
    soonest = min(cooling.values(), default=now)
    return NoDeployment(
        f"Every deployment of '{route.name}' is cooling down after failures or is at its limit; "
        "try again shortly.",
        retry_after=max(1.0, soonest - now),
    )
