"""`calcifer prices MODEL` and `calcifer prices --check`, over a registry built from the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

from calcifer.catalogue.source import catalogue_version, register_prices
from calcifer.cli.prices import prices_command
from calcifer.domain.pricing import PricingConfig, PricingRegistry

NOW = datetime(2026, 11, 27, tzinfo=UTC)
MODELS = [
    ("gpt-4o", "openai"),
    ("o3", "openai"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("gemini-2.5-pro", "gemini"),
]


def registry() -> PricingRegistry:
    pricing = PricingRegistry(catalogue_version())
    register_prices(pricing, "openai", ["gpt-4o", "o3"])
    register_prices(pricing, "anthropic", ["claude-sonnet-4-20250514"])
    register_prices(pricing, "google", ["gemini-2.5-pro"])
    return pricing


def rows(text: str) -> dict[str, list[str]]:
    """Each table row's label -> its columns (first occurrence of the label)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        label, _, rest = line.strip().partition("  ")
        if rest and label not in found:
            found[label] = rest.split()
    return found


def test_a_model_shows_every_token_class_per_1m_and_per_1k() -> None:
    text, code = prices_command(registry(), MODELS, "claude-sonnet-4-20250514", False, at=NOW)
    assert code == 0
    assert text.splitlines()[0] == "claude-sonnet-4-20250514 (provider: anthropic)"
    assert f"catalogue: {catalogue_version()}" in text
    table = rows(text)
    assert table["input"] == ["3", "0.003"]
    assert table["cached input"] == ["0.3", "0.0003"]
    assert table["cache write (5m)"] == ["3.75", "0.00375"]
    assert table["cache write (1h)"] == ["6", "0.006"]
    assert table["output"] == ["15", "0.015"]
    assert table["reasoning"][:2] == ["15", "0.015"] and "output rate" in " ".join(table["reasoning"])


def test_a_class_without_its_own_rate_shows_the_rate_it_borrows() -> None:
    text, _ = prices_command(registry(), MODELS, "gpt-4o", False, at=NOW)
    table = rows(text)
    assert table["cached input"] == ["1.25", "0.00125"]
    assert table["cache write (5m)"][:2] == ["2.5", "0.0025"]
    assert "input rate" in " ".join(table["cache write (5m)"])


def test_long_context_tiers_are_printed() -> None:
    text, code = prices_command(registry(), MODELS, "gemini-2.5-pro", False, at=NOW)
    assert code == 0
    before, tier_heading, after = text.partition("more than 200,000 tokens")
    assert tier_heading
    assert rows(before)["input"] == ["1.25", "0.00125"]
    assert rows(after)["input"] == ["2.5", "0.0025"]
    assert rows(after)["output"] == ["15", "0.015"]


def test_dated_history_and_the_price_in_force_at_that_date() -> None:
    text, _ = prices_command(registry(), MODELS, "o3", False, at=NOW)
    assert "until 2025-06-10: 10 / 40" in text
    assert "from 2025-06-10: 2 / 8" in text
    assert rows(text)["input"] == ["2", "0.002"]
    old, _ = prices_command(registry(), MODELS, "o3", False, at=datetime(2025, 5, 1, tzinfo=UTC))
    assert "in force on 2025-05-01" in old
    assert rows(old)["input"] == ["10", "0.01"]


def test_an_unpriced_or_unknown_model_exits_1() -> None:
    text, code = prices_command(registry(), [*MODELS, ("house", "vllm")], "house", False, at=NOW)
    assert code == 1 and "no price" in text and "(provider: vllm)" in text
    text, code = prices_command(registry(), MODELS, "nope", False, at=NOW)
    assert code == 1 and "(not routable)" in text


def test_check_lists_routable_models_without_a_price() -> None:
    pricing = registry()
    text, code = prices_command(pricing, [*MODELS, ("house", "vllm"), ("another", "ollama")], None, True)
    assert code == 1
    assert "2 of 6 routable models have no price" in text
    assert "  another  (ollama)" in text and "  house  (vllm)" in text
    assert "gpt-4o" not in text


def test_check_passes_when_everything_is_priced() -> None:
    pricing = registry()
    pricing.register("house", PricingConfig.per_million("1", "1"))
    text, code = prices_command(pricing, [*MODELS, ("house", "vllm")], None, True)
    assert code == 0 and "all 5 routable models have a price" in text


def test_no_model_and_no_check_is_a_usage_error() -> None:
    text, code = prices_command(registry(), MODELS, None, False)
    assert code == 2 and text.startswith("usage:")
