"""Deployments: strategies order a model's deployments; routes are built (and checked) once at start-up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest

from calcifer.domain.deployments import (
    Deployment,
    DeploymentSpec,
    DeploymentStats,
    ModelGroup,
    RouteError,
    RouteSpec,
    build_routes,
    single,
)
from calcifer.domain.routing import ProviderRegistry
from tests.domain.doubles import ScriptedProvider

NOW = 1_750_000_000.0


def _deployments(*names: str, weights: tuple[float, ...] = ()) -> list[Deployment]:
    weights = weights or tuple(1.0 for _ in names)
    return [Deployment(ScriptedProvider(n, ("m",)), "m", w) for n, w in zip(names, weights, strict=True)]


def _names(order: list[Deployment]) -> list[str]:
    return [d.provider.name for d in order]


def _draws(*values: float) -> Callable[[], float]:
    it = iter(values)
    return lambda: next(it)


def test_weighted_order_follows_the_draws_in_proportion_to_weight() -> None:
    a, b, c = _deployments("a", "b", "c", weights=(3.0, 1.0, 1.0))
    group = ModelGroup("m", (a, b, c))
    # Total 5: a draw below 0.6 (3/5) picks a; then of b, c (total 2) a draw below 0.5 picks b.
    assert _names(group.order(_draws(0.59, 0.49), NOW, {})) == ["a", "b", "c"]
    assert _names(group.order(_draws(0.61, 0.49), NOW, {})) == ["b", "a", "c"]
    # 0.99 of 5 passes a and b; then of a, b (total 4) 0.99 passes a too.
    assert _names(group.order(_draws(0.99, 0.99), NOW, {})) == ["c", "b", "a"]


def test_a_draw_at_the_very_top_picks_the_last() -> None:
    a, b = _deployments("a", "b")
    assert _names(ModelGroup("m", (a, b)).order(lambda: 1.0, NOW, {})) == ["b", "a"]


def test_weighted_first_choice_matches_the_weights_over_many_draws() -> None:
    import random

    rng = random.Random(7)
    a, b = _deployments("a", "b", weights=(3.0, 1.0))
    group = ModelGroup("m", (a, b))
    firsts = Counter(group.order(rng.random, NOW, {})[0].provider.name for _ in range(4000))
    assert 2850 < firsts["a"] < 3150  # 3/4 of 4000 = 3000, within ~5 standard deviations


def test_least_in_flight_prefers_the_idlest_then_the_heaviest() -> None:
    a, b, c = _deployments("a", "b", "c", weights=(1.0, 2.0, 1.0))
    a.stats.in_flight, b.stats.in_flight, c.stats.in_flight = 2, 1, 1
    group = ModelGroup("m", (a, b, c), "least_in_flight")
    assert _names(group.order(lambda: 0.0, NOW, {})) == ["b", "c", "a"]


def test_lowest_latency_tries_unmeasured_first_then_the_fastest_average() -> None:
    a, b, c = _deployments("a", "b", "c")
    a.stats.observe(0.4)
    b.stats.observe(2.0)
    b.stats.observe(0.0)  # moving average: 2.0 + 0.3 * (0 - 2.0) = 1.4
    assert b.stats.latency == pytest.approx(1.4)
    group = ModelGroup("m", (a, b, c), "lowest_latency")
    assert _names(group.order(lambda: 0.0, NOW, {})) == ["c", "a", "b"]


def test_cheapest_orders_by_price_once_unpriced_last() -> None:
    registry = ProviderRegistry([ScriptedProvider(n, (f"m-{n}",)) for n in ("a", "b", "c")])
    prices = {"m-a": Decimal("0.010"), "m-b": Decimal("0.002")}
    spec = RouteSpec(
        tuple(DeploymentSpec(n, f"m-{n}") for n in ("c", "a", "b")),
        "cheapest",
    )
    route = build_routes(registry, {"pool": spec}, prices.get)["pool"]
    assert _names(route.group.order(lambda: 0.0, NOW, {})) == ["b", "a", "c"]


def test_cooling_and_limited_deployments_are_left_out() -> None:
    a, b, c = _deployments("a", "b", "c")
    limited = Deployment(ScriptedProvider("d", ("m",)), "m", max_in_flight=1)
    limited.stats.in_flight = 1
    per_minute = Deployment(ScriptedProvider("e", ("m",)), "m", rpm=2)
    per_minute.stats.count_request(NOW)
    per_minute.stats.count_request(NOW)
    group = ModelGroup("m", (a, b, c, limited, per_minute), "least_in_flight")
    assert _names(group.order(lambda: 0.0, NOW, {"a/m": NOW + 5})) == ["b", "c"]
    # The next minute the per-minute count starts again.
    assert "e" in _names(group.order(lambda: 0.0, NOW + 60, {}))


def test_stats_count_requests_per_minute() -> None:
    stats = DeploymentStats()
    stats.count_request(120.0)
    stats.count_request(179.0)
    assert stats.requests_this_minute(179.9) == 2
    assert stats.requests_this_minute(180.0) == 0
    stats.count_request(181.0)
    assert stats.requests_this_minute(181.0) == 1


def test_a_group_needs_a_deployment_and_a_known_strategy() -> None:
    with pytest.raises(ValueError, match="at least one deployment"):
        ModelGroup("m", ())
    with pytest.raises(ValueError, match="unknown strategy"):
        ModelGroup("m", tuple(_deployments("a")), "fastest")  # type: ignore[arg-type]


def test_routes_resolve_fallbacks_share_deployments_and_claim_new_names() -> None:
    openai = ScriptedProvider("openai", ("gpt-4o", "gpt-4.1"))
    azure = ScriptedProvider("azure", ("azure-gpt-4o",))
    claude = ScriptedProvider("anthropic", ("claude",))
    registry = ProviderRegistry([openai, azure, claude])
    specs = {
        "gpt-4o": RouteSpec(
            (DeploymentSpec("openai", "gpt-4o", 3.0), DeploymentSpec("azure", "azure-gpt-4o")),
            fallbacks=("claude",),
            context_fallbacks=("gpt-4.1",),
        ),
        "smart": RouteSpec((DeploymentSpec("openai", "gpt-4o"),), fallbacks=("gpt-4o",)),
    }
    routes = build_routes(registry, specs)
    route = routes["gpt-4o"]
    assert route.shared
    assert route.keys == {"openai/gpt-4o", "azure/azure-gpt-4o", "anthropic/claude", "openai/gpt-4.1"}
    assert [g.name for g in route.chain(overflowed=False)] == ["gpt-4o", "claude"]
    assert [g.name for g in route.chain(overflowed=True)] == ["gpt-4.1"]
    # One Deployment (one set of stats) per provider and model, wherever it appears.
    assert routes["smart"].group.deployments[0] is route.group.deployments[0]
    # A new name is claimed (listed, resolvable); an existing claim is kept.
    assert registry.resolve("smart") == (openai, "smart")
    assert registry.resolve("gpt-4o") == (openai, "gpt-4o")


def test_a_single_route_is_not_shared() -> None:
    route = single(ScriptedProvider("p", ("m",)), "m", "alias")
    assert not route.shared
    assert route.group.deployments[0].key == "p/m"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (RouteSpec((DeploymentSpec("nobody", "m", line=7),)), "no provider is named 'nobody'"),
        (RouteSpec((DeploymentSpec("p", "m", weight=0, line=7),)), "weight must be > 0"),
        (RouteSpec(fallbacks=("unknown",), line=7), "'unknown' is neither routable nor declared"),
        (RouteSpec(fallbacks=("m",), line=7), "lists itself as a fallback"),
    ],
)
def test_bad_routes_fail_at_start_naming_the_line(spec: RouteSpec, problem: str) -> None:
    registry = ProviderRegistry([ScriptedProvider("p", ("m",))])
    with pytest.raises(RouteError, match=problem) as caught:
        build_routes(registry, {"m": spec})
    assert caught.value.line == 7


def test_unclaimed_providers_serve_deployments_only() -> None:
    one = ScriptedProvider("one", ("llama",))
    two = ScriptedProvider("two", ("llama",))
    registry = ProviderRegistry()
    registry.register(one, claim=False)
    registry.register(two, claim=False)  # the same model twice: no claim, so no conflict
    assert set(registry.providers) == {"one", "two"}
    route = build_routes(
        registry, {"llama": RouteSpec((DeploymentSpec("one", "llama"), DeploymentSpec("two", "llama")))}
    )
    assert _names(route["llama"].group.order(lambda: 0.99, NOW, {})) == ["two", "one"]
    assert registry.resolve("llama") == (one, "llama")
