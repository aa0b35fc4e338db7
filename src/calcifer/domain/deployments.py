"""Deployments: one model name served by several (provider, model) pairs, and the order to try them in.

A `Deployment` is a provider plus the model name to send it, with a weight and optional limits of its
own. A `ModelGroup` holds the deployments of one model name and a strategy that orders them for each
request; a `Route` is the requested model's group followed by its fallback groups. Everything is built
once at start-up; ordering a request touches only the (few) deployments of its route.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, get_args

from calcifer.domain.errors import ModelNotFound
from calcifer.domain.ports import Credentialed, Provider
from calcifer.domain.routing import ProviderRegistry

Strategy = Literal["weighted", "least_in_flight", "lowest_latency", "cheapest"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
_LATENCY_WEIGHT = 0.3  # weight of the newest sample in the latency moving average


@dataclass(slots=True)
class DeploymentStats:
    """What this replica knows about one deployment: calls in flight, recent latency, failures."""

    in_flight: int = 0
    latency: float | None = None  # moving average of seconds to the answer (or a stream's first chunk)
    failures: int = 0  # consecutive failures within the cooldown window
    first_failure: float = 0.0
    minute: int = -1  # the minute `requests` counts in (for `rpm`)
    requests: int = 0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += _LATENCY_WEIGHT * (seconds - self.latency)

    def count_request(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.requests = minute, 0
        self.requests += 1

    def requests_this_minute(self, now: float) -> int:
        return self.requests if int(now // 60) == self.minute else 0


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One place a model is served: `provider` called with `model`.

    `key` names it in shared state (cooldowns): the same provider and model share health wherever they
    appear. `max_in_flight` and `rpm` are per-replica limits; a deployment at its limit is skipped.
    """

    provider: Provider
    model: str
    weight: float = 1.0
    max_in_flight: int | None = None
    rpm: int | None = None
    unit_price: Decimal | None = None  # USD per 1K input + per 1K output tokens, for `cheapest`
    stats: DeploymentStats = field(default_factory=DeploymentStats)
    max_output: int | None = None  # the model's most output tokens, when known (caps translated requests)
    # The provider when it may lack credentials (checked once here: a Protocol isinstance is slow).
    credentialed: Credentialed | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.provider, Credentialed):
            object.__setattr__(self, "credentialed", self.provider)

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.model}"

    def available(self, now: float) -> bool:
        if self.max_in_flight is not None and self.stats.in_flight >= self.max_in_flight:
            return False
        return self.rpm is None or self.stats.requests_this_minute(now) < self.rpm


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """The deployments of one model name and the strategy that orders them."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: Strategy = "weighted"

    def __post_init__(self) -> None:
        if not self.deployments:
            raise ValueError(f"model {self.name!r} needs at least one deployment")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r} (one of: {', '.join(STRATEGIES)})")
        if self.strategy == "cheapest":  # prices are fixed at start-up: order once, by price then weight
            ranked = sorted(self.deployments, key=_price_rank)
            object.__setattr__(self, "deployments", tuple(ranked))

    def order(self, rand: Callable[[], float], now: float, skip: Mapping[str, float]) -> list[Deployment]:
        """The deployments to try, best first, without those in `skip` (cooling down) or at a limit."""
        ready = [d for d in self.deployments if d.key not in skip and d.available(now)]
        if len(ready) < 2:
            return ready
        if self.strategy == "weighted":
            return _weighted(ready, rand)
        if self.strategy == "least_in_flight":
            return sorted(ready, key=lambda d: (d.stats.in_flight, -d.weight))
        if self.strategy == "lowest_latency":  # never measured sorts first, so each gets measured
            return sorted(ready, key=lambda d: d.stats.latency or 0.0)
        return ready  # cheapest: already in price order


@dataclass(frozen=True, slots=True)
class Route:
    """Where one requested model name goes: its group, then its fallbacks in order.

    `context_fallbacks` are taken instead when a deployment says the prompt exceeds its context window.
    A route with more than one deployment in all is `shared`: cooldowns and failover apply to it.
    """

    name: str
    group: ModelGroup
    fallbacks: tuple[ModelGroup, ...] = ()
    context_fallbacks: tuple[ModelGroup, ...] = ()
    keys: frozenset[str] = frozenset()

    @property
    def shared(self) -> bool:
        return len(self.keys) > 1

    def chain(self, overflowed: bool) -> tuple[ModelGroup, ...]:
        return self.context_fallbacks if overflowed else (self.group, *self.fallbacks)


class RouteError(ValueError):
    """A declared route names a provider or model that does not exist: a start-up error."""

    def __init__(self, problem: str, line: int = 0) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A deployment as declared: a provider (by name), the model to send it, weight and limits."""

    provider: str
    model: str
    weight: float = 1.0
    max_in_flight: int | None = None
    rpm: int | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A model's routing as declared (every part optional)."""

    deployments: tuple[DeploymentSpec, ...] = ()
    strategy: Strategy = "weighted"
    fallbacks: tuple[str, ...] = ()
    context_fallbacks: tuple[str, ...] = ()
    line: int = 0


def build_routes(
    registry: ProviderRegistry,
    specs: Mapping[str, RouteSpec],
    unit_price: Callable[[str], Decimal | None] = lambda _: None,
    max_output: Callable[[str], int | None] = lambda _: None,
) -> dict[str, Route]:
    """Every declared route, checked against the providers (a start-up error names what is wrong).

    A model name with deployments is also claimed in the registry (if no provider claims it yet) so that
    it is listed and resolvable like any other model.
    """
    groups: dict[str, ModelGroup] = {}
    deployments: dict[tuple[str, str], Deployment] = {}  # one Deployment (and stats) per provider/model

    def deployment(spec: DeploymentSpec) -> Deployment:
        provider = registry.providers.get(spec.provider)
        if provider is None:
            names = ", ".join(sorted(registry.providers))
            raise RouteError(f"no provider is named {spec.provider!r} (known: {names})", spec.line)
        if spec.weight <= 0 or not math.isfinite(spec.weight):
            raise RouteError(f"deployment {spec.provider}/{spec.model}: weight must be > 0", spec.line)
        known = deployments.get((spec.provider, spec.model))
        if known is not None:
            return known
        made = Deployment(
            provider,
            spec.model,
            spec.weight,
            spec.max_in_flight,
            spec.rpm,
            unit_price(spec.model),
            max_output=max_output(spec.model),
        )
        deployments[(spec.provider, spec.model)] = made
        return made

    for name, spec in specs.items():
        if spec.deployments:
            groups[name] = ModelGroup(name, tuple(deployment(d) for d in spec.deployments), spec.strategy)

    def group(name: str, line: int) -> ModelGroup:
        found = groups.get(name)
        if found is None:
            try:
                provider, model = registry.resolve(name)
            except ModelNotFound:
                raise RouteError(f"model {name!r} is neither routable nor declared here", line) from None
            found = ModelGroup(name, (deployment(DeploymentSpec(provider.name, model)),))
            groups[name] = found
        return found

    routes: dict[str, Route] = {}
    for name, spec in specs.items():
        main = group(name, spec.line)
        if name in spec.fallbacks or name in spec.context_fallbacks:
            raise RouteError(f"model {name!r} lists itself as a fallback", spec.line)
        fallbacks = tuple(group(f, spec.line) for f in spec.fallbacks)
        context = tuple(group(f, spec.line) for f in spec.context_fallbacks)
        keys = frozenset(d.key for g in (main, *fallbacks, *context) for d in g.deployments)
        routes[name] = Route(name, main, fallbacks, context, keys)
    for name, spec in specs.items():
        if spec.deployments:
            registry.claim(name, routes[name].group.deployments[0].provider)
    return routes


def single(provider: Provider, model: str, name: str, max_output: int | None = None) -> Route:
    """The route of a model with no routing declared: its one provider, no fallbacks."""
    target = Deployment(provider, model, max_output=max_output)
    return Route(name, ModelGroup(name, (target,)), keys=frozenset((target.key,)))


def _weighted(ready: Sequence[Deployment], rand: Callable[[], float]) -> list[Deployment]:
    """Weighted random order: each next deployment drawn with probability proportional to its weight."""
    left = list(ready)
    order: list[Deployment] = []
    while len(left) > 1:
        total = sum(d.weight for d in left)
        point = rand() * total
        index = len(left) - 1
        for i, candidate in enumerate(left):
            point -= candidate.weight
            if point < 0:
                index = i
                break
        order.append(left.pop(index))
    order.extend(left)
    return order


def _price_rank(d: Deployment) -> tuple[int, Decimal, float]:
    return (0, d.unit_price, -d.weight) if d.unit_price is not None else (1, Decimal(0), -d.weight)
