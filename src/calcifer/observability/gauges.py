"""Gauges of the gateway's state rather than of its requests: budget left per key with a budget,
deployments cooling down (both read when a scrape comes: they describe shared state, the same whichever
worker reads it), and the ledger's queue and database writes (reported by each worker's writer as it
writes a batch)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from calcifer.domain.cooldowns import CooldownStore
from calcifer.domain.deployments import Route
from calcifer.domain.keys import KeyStore
from calcifer.domain.limits import Limiter, budget_window
from calcifer.observability.exposition import multiprocess_dir

WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the scrape-time gauges are read from."""

    keys: KeyStore | None
    limiter: Limiter
    cooldowns: CooldownStore
    routes: Iterable[Route]


class StateGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.budget_remaining = Gauge(
            "calcifer_budget_remaining_usd",
            "What is left of a budget in its current period, in USD (only entities that have a budget).",
            ("level", "id"),
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.budget_limit = Gauge(
            "calcifer_budget_limit_usd",
            "The budget of an entity that has one, in USD per period.",
            ("level", "id"),
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.cooldown = Gauge(
            "calcifer_deployment_cooldown_seconds",
            "Seconds until a deployment of a declared route may be called again (0: available).",
            ("route", "deployment"),
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.ledger_queue = Gauge(
            "calcifer_ledger_queue_depth",
            "Ledger rows waiting to be written.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.ledger_lag = Gauge(
            "calcifer_ledger_write_lag_seconds",
            "How long the oldest row of the last batch written waited, from its request's end.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.database_write = Histogram(
            "calcifer_database_write_seconds",
            "Time to write one batch of ledger rows (a failed attempt included).",
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.database_errors = Counter(
            "calcifer_database_errors", "Ledger writes the database failed.", registry=registry
        )
        self.redis_command = Histogram(
            "calcifer_redis_command_seconds",
            "Time of one Redis command, by the store that sent it (limiter, cooldowns, cache).",
            ("store",),
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.redis_errors = Counter(
            "calcifer_redis_errors", "Redis commands that failed, by store.", ("store",), registry=registry
        )
        self._redis: dict[str, tuple[Histogram, Counter]] = {}
        self._budgets: set[tuple[str, str]] = set()

    def redis(self, store: str, seconds: float, ok: bool) -> None:
        """One Redis command's report (`runtime.redis_timing`)."""
        bound = self._redis.get(store)
        if bound is None:
            bound = self._redis[store] = (self.redis_command.labels(store), self.redis_errors.labels(store))
        bound[0].observe(seconds)
        if not ok:
            bound[1].inc()

    def ledger_batch(self, pending: int, lag: float, seconds: float, ok: bool) -> None:
        """A ledger writer's report of one batch (`SqlLedger.on_batch`)."""
        self.ledger_queue.set(pending)
        self.database_write.observe(seconds)
        if ok:
            self.ledger_lag.set(lag)
        else:
            self.database_errors.inc()

    async def refresh(self, sources: Sources) -> None:
        """Read budgets and cooldowns now (a scrape is coming)."""
        await self._cooldowns(sources.cooldowns, sources.routes)
        if sources.keys is not None:
            await self._budgets_of_keys(sources.keys, sources.limiter)

    async def _cooldowns(self, store: CooldownStore, routes: Iterable[Route]) -> None:
        declared = [(route.name, key) for route in routes if route.shared for key in sorted(route.keys)]
        if not declared:
            return
        cooling: Mapping[str, float] = await store.cooling({key for _, key in declared})
        now = time.time()
        for route, key in declared:
            self.cooldown.labels(route, key).set(max(cooling.get(key, now) - now, 0.0))

    async def _budgets_of_keys(self, store: KeyStore, limiter: Limiter) -> None:
        now = time.time()
        seen: set[tuple[str, str]] = set()
        for key in await store.list_keys():
            if key.max_budget is None:
                continue
            spent = await limiter.spent(key.id, budget_window(key.budget_period, now))
            left = max(key.max_budget - spent, Decimal(0))
            self.budget_remaining.labels("key", key.id).set(float(left))
            self.budget_limit.labels("key", key.id).set(float(key.max_budget))
            seen.add(("key", key.id))
        if multiprocess_dir() is None:  # a key revoked or without a budget now: its series go
            for gone in self._budgets - seen:
                self.budget_remaining.remove(*gone)
                self.budget_limit.remove(*gone)
        self._budgets = seen
