"""Where a price came from: the catalogue (by its version), a named source, or a dated snapshot's family."""

from __future__ import annotations

from decimal import Decimal

from calcifer.domain.families import ModelFamilies
from calcifer.domain.pricing import PricingConfig, PricingRegistry

PRICE = PricingConfig(input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"))


def test_a_price_names_its_source() -> None:
    registry = PricingRegistry(version="genai-prices 1.2")
    registry.register("gpt-4o", PRICE)
    registry.register("llama", PRICE, source="config file or plugin")
    assert registry.source("gpt-4o") == "catalogue genai-prices 1.2"
    assert registry.source("llama") == "config file or plugin"
    assert registry.source("gpt-4o-2024-08-06") is None  # no families known
    registry.families = ModelFamilies([("gpt-4o-", "gpt-4o"), ("mystery-", "mystery")])
    assert registry.source("gpt-4o-2024-08-06") == "catalogue genai-prices 1.2, as gpt-4o"
    assert registry.source("mystery-2024-01-01") is None  # a family the registry has no price for
    assert registry.source("nothing") is None


def test_served_as_is_the_price_and_source_the_serving_vendor_bills() -> None:
    registry = PricingRegistry(version="genai-prices 1.2")
    vendor = PricingConfig(input_cost_per_1k=Decimal("0.0003"), output_cost_per_1k=Decimal("0.0009"))
    registry.register("deepseek-chat", PRICE)
    registry.register("router/deepseek-chat", vendor, source="config file or plugin")
    assert registry.served_as("router", "deepseek-chat") == (vendor, "config file or plugin")
    assert registry.served_as("deepseek", "deepseek-chat") == (PRICE, "catalogue genai-prices 1.2")
    assert registry.served_as("", "deepseek-chat") == (PRICE, "catalogue genai-prices 1.2")
    assert registry.served_as("router", "unknown") == (None, None)
