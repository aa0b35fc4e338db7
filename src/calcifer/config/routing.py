"""The `routing:` and `cache:` sections of the config file: deployments, strategies, fallbacks, the
request deadline, cooldowns and the response cache (the syntax is in the README, "Routing, fallbacks
and the cache"). Read with `config.reader`, so every problem names its line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import yaml

from calcifer.config.reader import Node, Reader
from calcifer.domain.cache import CacheRule
from calcifer.domain.cooldowns import CooldownPolicy
from calcifer.domain.deployments import STRATEGIES, DeploymentSpec, RouteSpec, Strategy

CacheBackend = Literal["memory", "redis"]


@dataclass(frozen=True, slots=True)
class RoutingFileSpec:
    routes: dict[str, RouteSpec] = field(default_factory=dict)
    request_timeout: float | None = None
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    cache_rules: dict[str, CacheRule] = field(default_factory=dict)
    cache_ttl: float = 300.0
    cache_max_entries: int = 10_000
    cache_backend: CacheBackend | None = None  # None: Redis when CALCIFER_REDIS_URL is set, else memory


def read_sections(reader: Reader, routing: Node | None, cache: Node | None) -> RoutingFileSpec | None:
    if routing is None and cache is None:
        return None
    ttl, entries, backend = _cache(reader, cache) if cache is not None else (300.0, 10_000, None)
    if routing is None:
        return RoutingFileSpec(cache_ttl=ttl, cache_max_entries=entries, cache_backend=backend)
    top = reader.mapping(routing, "routing", ("request_timeout", "cooldown", "models"))
    timeout = None
    if "request_timeout" in top:
        timeout = reader.seconds(top["request_timeout"], "routing.request_timeout")
    cooldown = _cooldown(reader, top["cooldown"]) if "cooldown" in top else CooldownPolicy()
    routes: dict[str, RouteSpec] = {}
    rules: dict[str, CacheRule] = {}
    if "models" in top:
        for model, node in reader.mapping(top["models"], "routing.models").items():
            routes[model], rule = _model(reader, node, f"routing.models.{model}", model, ttl)
            if rule is not None:
                rules[model] = rule
    return RoutingFileSpec(routes, timeout, cooldown, rules, ttl, entries, backend)


def _model(
    reader: Reader, node: Node, where: str, model: str, ttl: float
) -> tuple[RouteSpec, CacheRule | None]:
    keys = ("deployments", "strategy", "fallbacks", "context_fallbacks", "cache")
    fields = reader.mapping(node, where, keys)
    strategy: Strategy = "weighted"
    if "strategy" in fields:
        name = reader.text(fields["strategy"], f"{where}.strategy")
        if name not in STRATEGIES:
            raise reader.fail(fields["strategy"], f"{where}.strategy must be one of: {', '.join(STRATEGIES)}")
        strategy = name
    deployments: list[DeploymentSpec] = []
    if "deployments" in fields:
        items = reader.sequence(fields["deployments"], f"{where}.deployments")
        if not items:
            raise reader.fail(fields["deployments"], f"{where}.deployments must list at least one")
        deployments = [
            _deployment(reader, n, f"{where}.deployments[{i}]", model) for i, n in enumerate(items)
        ]
    chains = {}
    for key in ("fallbacks", "context_fallbacks"):
        names = []
        if key in fields:
            for i, item in enumerate(reader.sequence(fields[key], f"{where}.{key}")):
                names.append(reader.text(item, f"{where}.{key}[{i}]"))
        chains[key] = tuple(names)
    rule = _model_cache(reader, fields["cache"], f"{where}.cache", ttl) if "cache" in fields else None
    line = node.start_mark.line + 1
    spec = RouteSpec(tuple(deployments), strategy, chains["fallbacks"], chains["context_fallbacks"], line)
    return spec, rule


def _deployment(reader: Reader, node: Node, where: str, model: str) -> DeploymentSpec:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return DeploymentSpec(reader.text(node, where), model, line=line)
    fields = reader.mapping(node, where, ("provider", "model", "weight", "max_in_flight", "rpm"))
    if "provider" not in fields:
        raise reader.fail(node, f"{where} needs 'provider' (a provider's name)")
    provider = reader.text(fields["provider"], f"{where}.provider")
    target = reader.text(fields["model"], f"{where}.model") if "model" in fields else model
    weight = 1.0
    if "weight" in fields:
        weight = float(reader.number(fields["weight"], f"{where}.weight"))
        if weight == 0:
            raise reader.fail(fields["weight"], f"{where}.weight must be more than 0")
    limits = [reader.count(fields, key, where) for key in ("max_in_flight", "rpm")]
    return DeploymentSpec(provider, target, weight, limits[0], limits[1], line)


def _cooldown(reader: Reader, node: Node) -> CooldownPolicy:
    fields = reader.mapping(node, "routing.cooldown", ("failures", "window", "seconds", "max_seconds"))
    default = CooldownPolicy()
    failures = reader.count(fields, "failures", "routing.cooldown") or default.failures

    def span(key: str, fallback: float) -> float:
        return reader.seconds(fields[key], f"routing.cooldown.{key}") if key in fields else fallback

    return CooldownPolicy(
        failures,
        span("window", default.window),
        span("seconds", default.seconds),
        span("max_seconds", default.max_seconds),
    )


def _model_cache(reader: Reader, node: Node, where: str, ttl: float) -> CacheRule:
    flag = reader.flag(node)
    if flag is not None:
        return CacheRule(flag, ttl)
    fields = reader.mapping(node, where, ("ttl",))
    return CacheRule(True, reader.seconds(fields["ttl"], f"{where}.ttl") if "ttl" in fields else ttl)


def _cache(reader: Reader, node: Node) -> tuple[float, int, CacheBackend | None]:
    fields = reader.mapping(node, "cache", ("ttl", "max_entries", "backend"))
    ttl = reader.seconds(fields["ttl"], "cache.ttl") if "ttl" in fields else 300.0
    entries = reader.count(fields, "max_entries", "cache") or 10_000
    backend: CacheBackend | None = None
    if "backend" in fields:
        name = reader.text(fields["backend"], "cache.backend")
        if name not in ("memory", "redis"):
            raise reader.fail(fields["backend"], "cache.backend must be 'memory' or 'redis'")
        backend = "memory" if name == "memory" else "redis"
    return ttl, entries, backend
