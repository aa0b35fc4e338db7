"""Exact cost in Decimal: every token class priced once, golden vectors from PROVIDER_FACTS §6.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator, cost_of
from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry
from calcifer.domain.types import Usage

GPT_4O = PricingConfig.per_million("2.50", "10.00", cached_input="1.25")
CLAUDE_SONNET_4 = PricingConfig.per_million("3.00", "15.00", cached_input="0.30", cache_write="3.75")
GEMINI_25_PRO = PricingConfig.per_million(
    "1.25",
    "10.00",
    cached_input="0.125",
    tiers=(PriceTier(200_000, PricingConfig.per_million("2.50", "15.00", cached_input="0.25")),),
)
M = 1_000_000


# --- golden vectors (genai-prices 0.2.3, verified offline; PROVIDER_FACTS §6.1) -----------------------


def test_gpt_4o_one_million_in_and_out() -> None:
    assert cost_of(Usage(M, M), GPT_4O) == Decimal("12.50")


def test_gpt_4o_one_million_in_with_half_cached() -> None:
    assert cost_of(Usage(M, 0, cached_tokens=500_000), GPT_4O) == Decimal("1.875")


def test_claude_sonnet_4_with_cache_write() -> None:
    # Anthropic input 5 (excludes cache) + cache_creation 4735 → prompt_tokens 4740 (includes it)
    usage = Usage(prompt_tokens=4740, completion_tokens=255, cache_write_tokens=4735)
    assert cost_of(usage, CLAUDE_SONNET_4) == Decimal("0.02159625")


def test_gemini_25_pro_at_the_tier_threshold_is_base_price() -> None:
    assert cost_of(Usage(200_000, 1000), GEMINI_25_PRO) == Decimal("0.260")


def test_gemini_25_pro_one_past_the_threshold_prices_every_token_at_the_tier() -> None:
    assert cost_of(Usage(200_001, 1000), GEMINI_25_PRO) == Decimal("0.5150025")


def test_echo_original_example() -> None:
    # the original README: "Test message" → prompt 2, completion 2, cost 0.0002 at $0.05/1K
    echo = PricingConfig(input_cost_per_1k=Decimal("0.05"), output_cost_per_1k=Decimal("0.05"))
    assert cost_of(Usage(2, 2), echo) == Decimal("0.0002")


# --- every token class once -------------------------------------------------------------------------

RATES = PricingConfig(
    input_cost_per_1k=Decimal(1000),
    output_cost_per_1k=Decimal(10_000),
    cached_input_cost_per_1k=Decimal(100),
    cache_write_cost_per_1k=Decimal(2000),
    reasoning_cost_per_1k=Decimal(20_000),
)  # per token: input 1, output 10, cached 0.1, cache write 2, reasoning 20


def test_each_token_class_is_priced_once_at_its_own_rate() -> None:
    usage = Usage(100, 50, cached_tokens=30, cache_write_tokens=20, reasoning_tokens=10)
    # plain input 50·1 + cached 30·0.1 + written 20·2 + plain output 40·10 + reasoning 10·20
    assert cost_of(usage, RATES) == Decimal(50 + 3 + 40 + 400 + 200)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(10, 0), Decimal(10)),
        (Usage(10, 0, cached_tokens=10), Decimal(1)),
        (Usage(10, 0, cache_write_tokens=10), Decimal(20)),
        (Usage(0, 10), Decimal(100)),
        (Usage(0, 10, reasoning_tokens=10), Decimal(200)),
    ],
)
def test_single_classes(usage: Usage, expected: Decimal) -> None:
    assert cost_of(usage, RATES) == expected


def test_missing_special_rates_fall_back_to_base_rates() -> None:
    base_only = PricingConfig(input_cost_per_1k=Decimal(1000), output_cost_per_1k=Decimal(10_000))
    usage = Usage(100, 50, cached_tokens=30, cache_write_tokens=20, reasoning_tokens=10)
    assert cost_of(usage, base_only) == cost_of(Usage(100, 50), base_only) == Decimal(100 + 500)


def test_cached_above_prompt_is_clamped_to_the_prompt() -> None:
    assert cost_of(Usage(10, 0, cached_tokens=25), RATES) == Decimal(1)


def test_cache_write_is_clamped_to_what_cached_reads_leave() -> None:
    # 10 prompt tokens, 8 cached: at most 2 can be cache writes, and nothing is negative
    assert cost_of(Usage(10, 0, cached_tokens=8, cache_write_tokens=5), RATES) == Decimal("4.8")


def test_reasoning_above_completion_is_clamped_to_the_completion() -> None:
    assert cost_of(Usage(0, 5, reasoning_tokens=50), RATES) == Decimal(100)


def test_tier_applies_to_special_rates_too() -> None:
    usage = Usage(300_000, 0, cached_tokens=100_000)
    # 200k at 2.50/1M + 100k cached at 0.25/1M
    assert cost_of(usage, GEMINI_25_PRO) == Decimal("0.525")


def test_result_is_exact_normalised_and_quantised_to_1e_12() -> None:
    ten = cost_of(Usage(M, 0), PricingConfig.per_million("10", "40"))
    assert isinstance(ten, Decimal)
    assert str(ten) == "10"  # not "1E+1" nor "10.000000000000"
    assert str(cost_of(Usage(0, 0), RATES)) == "0"
    # 1 token at $0.0000000000004/token → 4e-13, rounds (half even) to 0 at 1e-12
    tiny = PricingConfig(input_cost_per_1k=Decimal("4e-10"), output_cost_per_1k=Decimal(0))
    assert cost_of(Usage(1, 0), tiny) == 0
    # 3 tokens at 5e-13 → 1.5e-12 → 2e-12 (half even), 1 token at 5e-13 → 0
    half = PricingConfig(input_cost_per_1k=Decimal("5e-10"), output_cost_per_1k=Decimal(0))
    assert cost_of(Usage(3, 0), half) == Decimal("2e-12")
    assert cost_of(Usage(1, 0), half) == 0


# --- the calculator: registry, unpriced models, worst case ------------------------------------------


def _calculator() -> CostCalculator:
    registry = PricingRegistry()
    registry.register("gpt-4o", GPT_4O)
    registry.register("o3", PricingConfig.per_million("10", "40"))
    registry.register("o3", PricingConfig.per_million("2", "8"), since=datetime(2025, 6, 10, tzinfo=UTC))
    return CostCalculator(registry)


def test_calculator_prices_a_known_model() -> None:
    calculator = _calculator()
    assert calculator.cost("gpt-4o", Usage(M, M)) == Decimal("12.50")
    assert calculator.registry.get("gpt-4o") is GPT_4O


def test_calculator_uses_the_price_in_force_at_the_request_time() -> None:
    calculator = _calculator()
    assert calculator.cost("o3", Usage(M, 0), datetime(2025, 5, 1, tzinfo=UTC)) == Decimal(10)
    assert calculator.cost("o3", Usage(M, 0), datetime(2025, 7, 1, tzinfo=UTC)) == Decimal(2)
    assert calculator.cost("o3", Usage(M, 0)) == Decimal(2)


def test_no_usage_means_no_cost_and_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="calcifer.cost"):
        assert _calculator().cost("unknown-model", None) is None
    assert caplog.records == []


def test_unpriced_model_is_none_not_zero_and_warns_once_per_model(caplog: pytest.LogCaptureFixture) -> None:
    calculator = _calculator()
    with caplog.at_level(logging.WARNING, logger="calcifer.cost"):
        assert calculator.cost("mystery-1", Usage(10, 10)) is None
        assert calculator.cost("mystery-1", Usage(20, 20)) is None
        assert calculator.cost("mystery-2", Usage(10, 10)) is None
        assert calculator.cost("gpt-4o", Usage(10, 10)) is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "mystery-1" in warnings[0].getMessage()
    assert "mystery-2" in warnings[1].getMessage()
    assert warnings[0].name == "calcifer.cost"


def test_worst_case_is_the_prompt_plus_max_output_at_full_rates() -> None:
    calculator = _calculator()
    assert calculator.worst_case("gpt-4o", M, M) == Decimal("12.50")
    assert calculator.worst_case("gpt-4o", 1000, 0) == Decimal("0.0025")
    assert calculator.worst_case("nope", 1000, 1000) is None


def test_worst_case_uses_the_price_in_force_at_the_request_time() -> None:
    calculator = _calculator()
    change = datetime(2025, 6, 10, tzinfo=UTC)
    assert calculator.worst_case("o3", M, 0, datetime(2025, 5, 1, tzinfo=UTC)) == Decimal(10)
    assert calculator.worst_case("o3", M, 0, change.timestamp() - 1) == Decimal(10)  # epoch seconds
    assert calculator.worst_case("o3", M, 0, change.timestamp()) == Decimal(2)


@pytest.mark.parametrize("price", [GPT_4O, CLAUDE_SONNET_4, GEMINI_25_PRO])
@pytest.mark.parametrize(("prompt", "output"), [(0, 0), (1, 7), (173, 16_384), (200_001, 3), (M, M)])
def test_worst_case_is_exactly_the_cost_of_that_usage(price: PricingConfig, prompt: int, output: int) -> None:
    pricing = PricingRegistry()
    pricing.register("m", price)
    calculator = CostCalculator(pricing)
    worst = calculator.worst_case("m", prompt, output)
    assert worst is not None and str(worst) == str(cost_of(Usage(prompt, output), price))


def test_a_vendors_own_price_of_a_model_comes_before_the_models_price() -> None:
    pricing = PricingRegistry()
    pricing.register("llama", PricingConfig.per_million("1", "1"))
    pricing.register("groq/llama", PricingConfig.per_million("0.59", "0.79"))
    calculator = CostCalculator(pricing)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert calculator.cost("llama", usage, provider="groq") == Decimal("1.38")
    assert calculator.cost("llama", usage, provider="other") == Decimal(2)
    assert calculator.cost("llama", usage) == Decimal(2)
    assert "groq/llama" in pricing and "groq/other" not in pricing
