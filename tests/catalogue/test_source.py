"""The price catalogue: genai-prices data applied exactly, every expected value worked out by hand here
from the providers' list prices (USD per 1M tokens), never by the code under test."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.catalogue.source import (
    anthropic_entries,
    catalogue_version,
    data_date,
    gemini_entries,
    lookup,
    max_output_for,
    max_output_tokens,
    openai_chat_entries,
    register_prices,
)
from calcifer.domain.cost import cost_of
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.types import Usage

M = Decimal(1_000_000)
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def priced(provider: str, *models: str) -> PricingRegistry:
    registry = PricingRegistry(catalogue_version())
    assert register_prices(registry, provider, models) == []
    return registry


def cost(registry: PricingRegistry, model: str, usage: Usage, at: datetime = NOW) -> Decimal:
    price = registry.get(model, at)
    assert price is not None
    return cost_of(usage, price)


def test_gpt_4o_input_and_output() -> None:
    # $2.50 in, $10 out per 1M.
    assert cost(priced("openai", "gpt-4o"), "gpt-4o", Usage(1_000_000, 1_000_000)) == Decimal("12.50")


def test_gpt_4o_cached_input_is_billed_at_the_cache_read_rate_once() -> None:
    # 500k plain at $2.50 + 500k cached at $1.25 = 1.25 + 0.625.
    usage = Usage(1_000_000, 0, cached_tokens=500_000)
    assert cost(priced("openai", "gpt-4o"), "gpt-4o", usage) == Decimal("1.875")


def test_a_dated_anthropic_id_finds_its_entry_and_cache_writes_cost_the_write_rate() -> None:
    registry = priced("anthropic", "claude-sonnet-4-20250514")
    # 5 plain input at $3 + 4735 cache writes at $3.75 + 255 output at $15, per 1M.
    expected = (5 * Decimal(3) + 4735 * Decimal("3.75") + 255 * Decimal(15)) / M
    usage = Usage(4740, 255, cache_write_tokens=4735)
    assert expected == Decimal("0.02159625")
    assert cost(registry, "claude-sonnet-4-20250514", usage) == expected


def test_anthropic_cache_reads_and_the_1h_write_rate() -> None:
    registry = priced("anthropic", "claude-sonnet-4-20250514")
    price = registry.get("claude-sonnet-4-20250514")
    assert price is not None
    assert price.cached_input_cost_per_1k == Decimal("0.30") / 1000
    assert price.cache_write_1h_cost_per_1k == Decimal("6") / 1000
    # 100 plain at $3 + 900 cache reads at $0.30 + 10 output at $15.
    usage = Usage(1000, 10, cached_tokens=900)
    assert cost(registry, "claude-sonnet-4-20250514", usage) == (100 * 3 + 900 * Decimal("0.30") + 150) / M


def test_gemini_2_5_pro_long_context_tier_is_a_cliff_over_200k_prompt_tokens() -> None:
    registry = priced("google", "gemini-2.5-pro")
    # At 200,000: $1.25 in, $10 out. One more token: every token at $2.50 in, $15 out.
    assert cost(registry, "gemini-2.5-pro", Usage(200_000, 1_000)) == Decimal("0.260")
    assert cost(registry, "gemini-2.5-pro", Usage(200_001, 1_000)) == Decimal("0.5150025")


def test_gemini_2_5_pro_tier_applies_to_cached_tokens_too() -> None:
    registry = priced("google", "gemini-2.5-pro")
    # 300k prompt (100k cached): 200k at $2.50 + 100k at $0.25 + 1k output at $15.
    expected = (200_000 * Decimal("2.5") + 100_000 * Decimal("0.25") + 1_000 * 15) / M
    assert cost(registry, "gemini-2.5-pro", Usage(300_000, 1_000, cached_tokens=100_000)) == expected


def test_gemini_thinking_tokens_are_billed_as_output() -> None:
    registry = priced("google", "gemini-2.5-flash")
    # prompt 1000 at $0.30; 100 candidates + 50 thoughts = 150 output at $2.50.
    usage = Usage(1000, 150, reasoning_tokens=50)
    assert cost(registry, "gemini-2.5-flash", usage) == (1000 * Decimal("0.30") + 150 * Decimal("2.50")) / M
    assert cost(registry, "gemini-2.5-flash", usage) == Decimal("0.000675")


def test_o3_price_in_force_depends_on_the_request_date() -> None:
    registry = priced("openai", "o3")
    one_m_in = Usage(1_000_000, 0)
    assert cost(registry, "o3", one_m_in, datetime(2025, 5, 1, tzinfo=UTC)) == Decimal(10)
    assert cost(registry, "o3", one_m_in, datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC)) == Decimal(10)
    assert cost(registry, "o3", one_m_in, datetime(2025, 6, 10, tzinfo=UTC)) == Decimal(2)
    assert cost(registry, "o3", one_m_in) == Decimal(2)


def test_reasoning_tokens_cost_the_output_rate_when_no_distinct_rate_exists() -> None:
    registry = priced("openai", "o3")
    # 1M output of which 600k reasoning: all at $8.
    assert cost(registry, "o3", Usage(0, 1_000_000, reasoning_tokens=600_000)) == Decimal(8)


def test_lookup_uses_the_data_match_clauses_and_fallback_providers() -> None:
    dated = lookup("openai", "gpt-4o-2024-08-06")
    assert dated is not None and dated.model == "gpt-4o"
    assert lookup("gemini", "gemini-2.5-flash") is not None  # provider found by its match rule
    groq = lookup("groq", "llama-3.3-70b-versatile")
    assert groq is not None and groq.history[-1][1].input_cost_per_1k == Decimal("0.59") / 1000
    assert lookup("anthropic", "gpt-4o") is None
    assert lookup("no-such-provider", "gpt-4o") is None


def test_register_prices_reports_unpriced_models_and_overrides_win_alone() -> None:
    registry = PricingRegistry()
    override = PricingConfig.per_million("1", "2")
    unpriced = register_prices(registry, "openai", ["o3", "gpt-4o", "house-model"], {"o3": override})
    assert unpriced == ["house-model"]
    # The override replaces the catalogue's history: no dated catalogue price leaks back in.
    assert registry.get("o3", datetime(2025, 5, 1, tzinfo=UTC)) == override
    assert registry.history("o3") == ((None, override),)
    assert "house-model" not in registry


def test_every_routed_provider_model_is_priced_with_input_and_output() -> None:
    for entries in (openai_chat_entries(), anthropic_entries(), gemini_entries()):
        assert entries
        for model, entry in entries.items():
            # Each entry is listed under its model id and under the exact names its match clauses give.
            assert entry.history, model
            assert model == entry.model or entries[entry.model] is entry, model
            for _, config in entry.history:
                assert config.output_cost_per_1k > 0 or config.input_cost_per_1k > 0, model
    assert {"gpt-4o", "o3", "gpt-4.1"} <= set(openai_chat_entries())
    assert {"claude-sonnet-4-0", "claude-3-5-haiku-latest", "claude-opus-4-1"} <= set(anthropic_entries())
    assert {"gemini-2.5-pro", "gemini-2.5-flash"} <= set(gemini_entries())
    assert not any(m.startswith("claude") or "embedding" in m for m in gemini_entries())
    assert gemini_entries()["gemini-2.5-flash"].context_window == 1_048_576


def test_anthropic_max_output_per_model_and_alias() -> None:
    table = max_output_tokens("anthropic")
    assert table["claude-sonnet-4-0"] == 64_000
    assert table["claude-opus-4-20250514"] == 32_000  # an exact alias in the data
    assert table["claude-3-5-haiku-latest"] == 8_192
    assert table["claude-opus-4-6"] == 128_000
    assert set(anthropic_entries()) <= set(table)
    assert anthropic_entries()["claude-opus-4-1"].max_output_tokens == 32_000
    assert max_output_for("anthropic", "claude-sonnet-4-20250514") == 64_000
    assert max_output_for("anthropic", "claude-3-5-haiku-20241022") == 8_192
    assert max_output_tokens("mistral") == {}
    assert max_output_for("mistral", "mistral-large-latest") is None


def test_openai_and_gemini_max_output_where_published() -> None:
    assert openai_chat_entries()["gpt-4o"].max_output_tokens == 16_384
    assert max_output_for("openai", "gpt-4o-2024-11-20") == 16_384  # a dated snapshot of gpt-4o
    assert max_output_for("openai", "gpt-4o-2024-05-13") == 4_096  # the first snapshot had less
    assert max_output_tokens("openai")["gpt-4.1-mini"] == 32_768
    assert gemini_entries()["gemini-2.0-flash"].max_output_tokens == 8_192
    assert gemini_entries()["gemini-2.5-flash"].max_output_tokens == 65_536
    assert max_output_for("openai", "gpt-6-sol") is None  # not published: no maximum is assumed


def test_catalogue_version_names_the_package_and_the_data_date() -> None:
    from importlib.metadata import version

    newest = data_date()
    assert newest is not None and newest >= datetime(2025, 6, 10, tzinfo=UTC).date()
    assert catalogue_version() == f"genai-prices {version('genai-prices')} (newest price dated {newest})"


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1"])
def test_openai_entries_have_no_cache_write_rate(model: str) -> None:
    entry = openai_chat_entries()[model]
    assert entry.history[-1][1].cache_write_cost_per_1k is None
