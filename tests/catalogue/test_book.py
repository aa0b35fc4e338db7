"""The gateway's price snapshot, read in a child process, is exactly what the catalogue says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calcifer.catalogue.book import PriceBook, decode_config, encode_config, load_price_book
from calcifer.catalogue.source import (
    anthropic_entries,
    catalogue_version,
    gemini_entries,
    lookup,
    openai_chat_entries,
)
from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return load_price_book([("groq", "llama-3.3-70b-versatile"), ("groq", "no-such-model")])


def test_snapshot_equals_the_catalogue(book: PriceBook) -> None:
    assert book.version == catalogue_version()
    for provider, live in (
        ("openai", openai_chat_entries()),
        ("anthropic", anthropic_entries()),
        ("google", gemini_entries()),
    ):
        snap = book.entries(provider)
        assert set(snap) == set(live)
        for model, entry in live.items():
            assert snap[model].history == entry.history, model
            assert snap[model].context_window == entry.context_window
            assert snap[model].max_output_tokens == entry.max_output_tokens


def test_lookups_by_other_providers(book: PriceBook) -> None:
    live = lookup("groq", "llama-3.3-70b-versatile")
    assert live is not None
    found = book.lookup("groq", "llama-3.3-70b-versatile")
    assert found is not None and found.history == live.history
    assert book.lookup("groq", "no-such-model") is None


def test_register_applies_overrides_and_reports_the_unpriced(book: PriceBook) -> None:
    pricing = PricingRegistry()
    override = PricingConfig.per_million("1", "2")
    unpriced = book.register(pricing, "openai", ["gpt-4o", "o3", "my-model"], {"my-model": override})
    assert unpriced == []
    assert pricing.get("my-model") == override
    gpt4o = pricing.get("gpt-4o")
    assert gpt4o is not None and gpt4o.input_cost_per_1k == Decimal("0.0025")
    assert book.register(pricing, "openai", ["not-a-model"]) == ["not-a-model"]
    assert book.max_output()["claude-sonnet-4-0"] > 0


def test_config_round_trips_exactly() -> None:
    tiered = PricingConfig.per_million(
        "1.25", "10", cached_input="0.125", cache_write="1.5", cache_write_1h="3", reasoning="11", tiers=()
    )
    config = PricingConfig(
        input_cost_per_1k=tiered.input_cost_per_1k,
        output_cost_per_1k=tiered.output_cost_per_1k,
        cached_input_cost_per_1k=tiered.cached_input_cost_per_1k,
        tiers=(PriceTier(200_000, tiered),),
    )
    assert decode_config(encode_config(config)) == config
    assert decode_config(encode_config(tiered)) == tiered


def test_dated_snapshot_names_are_routable_through_the_assembly() -> None:
    from calcifer.assembly.providers import assemble
    from calcifer.config.settings import Settings

    built = assemble(Settings.from_env({}))
    provider, model = built.registry.resolve("claude-sonnet-4-20250514")
    assert (provider.name, model) == ("anthropic", "claude-sonnet-4-20250514")
    price = built.pricing.get("claude-3-5-sonnet-20241022")
    assert price is not None and price.input_cost_per_1k == Decimal("0.003")
