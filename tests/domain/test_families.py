"""Dated snapshot names are routed and priced as their family's model; nothing else is."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calcifer.domain.errors import ModelNotFound
from calcifer.domain.families import ModelFamilies
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from tests.domain.doubles import ScriptedProvider

FAMILIES = [
    ("claude-sonnet-4-2025", "claude-sonnet-4-0"),
    ("claude-3-5-sonnet", "claude-3-5-sonnet"),
    ("gpt-4o", "gpt-4o"),
    ("gpt-4o-mini", "gpt-4o-mini"),
]


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet@20241022", "claude-3-5-sonnet"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-audio-preview", None),
        ("claude-3-5-sonnet-v2-foo", None),
        ("claude-3-5-sonnet", None),
        ("llama3", None),
    ],
)
def test_only_version_suffixes_join_a_family(name: str, model: str | None) -> None:
    families = ModelFamilies(FAMILIES)
    assert families.canonical(name) == model
    assert families.canonical(name) == model  # remembered


def test_memory_is_bounded() -> None:
    families = ModelFamilies(FAMILIES)
    for i in range(10_050):
        families.canonical(f"unknown-{i}")
    assert len(families._seen) <= 10_000
    assert not ModelFamilies() and families


def test_registry_and_prices_follow_the_family() -> None:
    provider = ScriptedProvider("anthropic", {"claude-sonnet-4-0"})
    registry = ProviderRegistry([provider])
    pricing = PricingRegistry()
    price = PricingConfig.per_million("3", "15")
    pricing.register("claude-sonnet-4-0", price)
    with pytest.raises(ModelNotFound):
        registry.resolve("claude-sonnet-4-20250514")
    assert pricing.get("claude-sonnet-4-20250514") is None
    registry.families = pricing.families = ModelFamilies(FAMILIES)
    # Routed to the family's provider under the client's own name; priced as the family's model.
    assert registry.resolve("claude-sonnet-4-20250514") == (provider, "claude-sonnet-4-20250514")
    found = pricing.get("claude-sonnet-4-20250514")
    assert found is not None and found.input_cost_per_1k == Decimal("0.003")
    with pytest.raises(ModelNotFound):
        registry.resolve("gpt-4o-2024-08-06")  # a family whose model no provider serves
