"""Prices as data: USD-per-1M conversion, long-context tiers and dated price history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def test_per_million_converts_every_rate_to_per_1k_exactly() -> None:
    config = PricingConfig.per_million(
        "2.50", "10.00", cached_input="1.25", cache_write="3.75", reasoning="12"
    )
    assert config.input_cost_per_1k == Decimal("0.0025")
    assert config.output_cost_per_1k == Decimal("0.01")
    assert config.cached_input_cost_per_1k == Decimal("0.00125")
    assert config.cache_write_cost_per_1k == Decimal("0.00375")
    assert config.reasoning_cost_per_1k == Decimal("0.012")
    assert all(
        isinstance(rate, Decimal)
        for rate in (config.input_cost_per_1k, config.output_cost_per_1k, config.cached_input_cost_per_1k)
    )


def test_per_million_keeps_missing_special_rates_missing() -> None:
    config = PricingConfig.per_million(Decimal("0.15"), Decimal("0.60"))
    assert config.input_cost_per_1k == Decimal("0.00015")
    assert config.cached_input_cost_per_1k is None
    assert config.cache_write_cost_per_1k is None
    assert config.reasoning_cost_per_1k is None
    assert config.tiers == ()


def test_per_million_keeps_tiers() -> None:
    tier = PriceTier(200_000, PricingConfig.per_million("2.50", "15.00"))
    assert PricingConfig.per_million("1.25", "10.00", tiers=(tier,)).tiers == (tier,)


def _tiered() -> tuple[PricingConfig, PricingConfig, PricingConfig]:
    high = PricingConfig.per_million("4", "20")
    mid = PricingConfig.per_million("2.50", "15.00")
    # deliberately out of order: the highest threshold passed must win, whatever the order
    base = PricingConfig.per_million(
        "1.25", "10.00", tiers=(PriceTier(500_000, high), PriceTier(200_000, mid))
    )
    return base, mid, high


def test_for_prompt_is_a_cliff_strictly_above_the_threshold() -> None:
    base, mid, high = _tiered()
    assert base.for_prompt(0) is base
    assert base.for_prompt(200_000) is base
    assert base.for_prompt(200_001) is mid
    assert base.for_prompt(500_000) is mid
    assert base.for_prompt(500_001) is high


def test_for_prompt_without_tiers_is_the_config_itself() -> None:
    config = PricingConfig.per_million("1", "2")
    assert config.for_prompt(10**9) is config


def test_registry_unknown_model_is_unpriced() -> None:
    registry = PricingRegistry()
    assert registry.get("nope") is None
    assert registry.get("nope", _at(2025, 1, 1)) is None
    assert "nope" not in registry
    assert len(registry) == 0


def test_registry_lists_models_and_version() -> None:
    registry = PricingRegistry(version="gp-0.2.3")
    registry.register("a", PricingConfig.per_million("1", "2"))
    registry.register("b", PricingConfig.per_million("1", "2"))
    registry.register("a", PricingConfig.per_million("3", "4"), since=_at(2025, 1, 1))
    assert registry.version == "gp-0.2.3"
    assert PricingRegistry().version == "builtin"
    assert sorted(registry) == ["a", "b"]
    assert len(registry) == 2
    assert "a" in registry


def test_dated_history_picks_the_price_in_force() -> None:
    # o3: $10/1M input until 2025-06-10, $2/1M since (PROVIDER_FACTS §6.2)
    old = PricingConfig.per_million("10", "40")
    new = PricingConfig.per_million("2", "8")
    registry = PricingRegistry()
    registry.register("o3", new, since=_at(2025, 6, 10))
    registry.register("o3", old)  # undated: the base price before any dated one
    assert registry.get("o3", _at(2025, 5, 1)) is old
    assert registry.get("o3", _at(2025, 6, 9)) is old
    assert registry.get("o3", _at(2025, 6, 10)) is new  # in force from `since` itself
    assert registry.get("o3", _at(2026, 1, 1)) is new
    assert registry.get("o3") is new  # no date: the newest
    # Seconds since the epoch, as the clock gives them, pick the same price as the datetime.
    assert registry.get("o3", _at(2025, 6, 10).timestamp() - 1) is old
    assert registry.get("o3", _at(2025, 6, 10).timestamp()) is new


def test_dated_history_with_several_changes_registered_in_any_order() -> None:
    prices = [PricingConfig.per_million(str(n), str(n)) for n in range(4)]
    registry = PricingRegistry()
    registry.register("m", prices[3], since=_at(2025, 3, 1))
    registry.register("m", prices[1], since=_at(2025, 1, 1))
    registry.register("m", prices[0])
    registry.register("m", prices[2], since=_at(2025, 2, 1))
    assert registry.get("m", _at(2024, 12, 31)) is prices[0]
    assert registry.get("m", _at(2025, 1, 15)) is prices[1]
    assert registry.get("m", _at(2025, 2, 15)) is prices[2]
    assert registry.get("m", _at(2025, 3, 15)) is prices[3]
    assert registry.get("m") is prices[3]


def test_only_dated_prices_before_the_first_date_use_the_earliest() -> None:
    first = PricingConfig.per_million("5", "5")
    second = PricingConfig.per_million("6", "6")
    registry = PricingRegistry()
    registry.register("m", second, since=_at(2025, 2, 1))
    registry.register("m", first, since=_at(2025, 1, 1))
    assert registry.get("m", _at(2020, 1, 1)) is first
    assert registry.get("m", _at(2025, 1, 1)) is first


def test_a_single_price_applies_at_any_date() -> None:
    only = PricingConfig.per_million("5", "5")
    registry = PricingRegistry()
    registry.register("m", only, since=_at(2025, 1, 1))
    assert registry.get("m", _at(2020, 1, 1)) is only
    assert registry.get("m", _at(2030, 1, 1)) is only


def test_re_registering_the_same_date_replaces_the_earlier_price() -> None:
    first = PricingConfig.per_million("5", "5")
    second = PricingConfig.per_million("6", "6")
    registry = PricingRegistry()
    registry.register("m", first)
    registry.register("m", second)
    assert registry.get("m") is second
    assert registry.get("m", _at(2025, 1, 1)) is second
