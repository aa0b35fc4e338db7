"""Every Anthropic token class priced from the catalogue, each expected value worked out by hand from
Anthropic's list prices (USD per 1M tokens):

claude-sonnet-4-5: input 3.00, cache read 0.30, cache write (5 min) 3.75, output 15.00;
  above 200k prompt tokens: input 6.00, cache read 0.60, cache write 7.50, output 22.50.
claude-opus-4-5: input 5.00, cache read 0.50, cache write (5 min) 6.25, output 25.00.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from calcifer.catalogue.source import provider_entries
from calcifer.domain.cost import CostCalculator
from calcifer.domain.pricing import PricingRegistry
from calcifer.domain.types import Usage
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import from_anthropic

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
M = Decimal(1_000_000)


@pytest.fixture(scope="module")
def calculator() -> CostCalculator:
    pricing = PricingRegistry()
    for entry in provider_entries("anthropic").values():
        for since, config in entry.history:
            pricing.register(entry.model, config, since=since)
    return CostCalculator(pricing)


def usage_of(raw_usage: dict[str, Any]) -> Usage:
    message = {"id": "msg_1", "model": "m", "content": [], "stop_reason": "end_turn", "usage": raw_usage}
    usage = from_anthropic(message, 0).usage
    assert usage is not None
    return usage


@pytest.mark.parametrize(
    ("raw_usage", "expected"),
    [
        ({"input_tokens": 1000, "output_tokens": 0}, 1000 * Decimal("3.00") / M),
        (
            {"input_tokens": 0, "cache_read_input_tokens": 1000, "output_tokens": 0},
            1000 * Decimal("0.30") / M,
        ),
        (
            {"input_tokens": 0, "cache_creation_input_tokens": 1000, "output_tokens": 0},
            1000 * Decimal("3.75") / M,
        ),
        ({"input_tokens": 0, "output_tokens": 1000}, 1000 * Decimal("15.00") / M),
        # Thinking tokens are part of output_tokens and billed at the output rate, once.
        (
            {"input_tokens": 0, "output_tokens": 1000, "output_tokens_details": {"thinking_tokens": 400}},
            1000 * Decimal("15.00") / M,
        ),
    ],
    ids=["input", "cache-read", "cache-write", "output", "thinking"],
)
def test_each_token_class_at_its_list_price(
    calculator: CostCalculator, raw_usage: dict[str, Any], expected: Decimal
) -> None:
    assert calculator.cost("claude-sonnet-4-5", usage_of(raw_usage)) == expected


def test_mixed_message_prices_every_class_once(calculator: CostCalculator) -> None:
    message = json.loads((FIXTURES / "message_tool_use.json").read_text())
    usage = from_anthropic(message, 0).usage
    # 50 input, 1000 cache writes, 2000 cache reads, 120 output (40 of them thinking).
    expected = (
        50 * Decimal("3.00") + 1000 * Decimal("3.75") + 2000 * Decimal("0.30") + 120 * Decimal(15)
    ) / M
    assert calculator.cost("claude-sonnet-4-5", usage) == expected == Decimal("0.0063")


def test_long_context_tier_counts_cache_tokens_in_the_prompt(calculator: CostCalculator) -> None:
    # 150k input + 60k cache reads = 210k prompt tokens: above 200k, every token is at the tier rate.
    usage = usage_of({"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000})
    expected = (150_000 * Decimal("6.00") + 60_000 * Decimal("0.60") + 1000 * Decimal("22.50")) / M
    assert calculator.cost("claude-sonnet-4-5", usage) == expected == Decimal("0.9585")


def test_streamed_usage_is_priced_like_a_message(calculator: CostCalculator) -> None:
    chunker = AnthropicChunker(0)
    usage = None
    for block in (FIXTURES / "stream_thinking_cached.sse").read_text().strip().split("\n\n"):
        data = json.loads(block.split("data: ", 1)[1])
        usage = next((c.usage for c in chunker.feed(data) if c.usage is not None), usage)
    # message_delta's cumulative counts: 12 input, 200 cache writes, 3000 cache reads, 87 output.
    expected = (12 * Decimal("5.00") + 200 * Decimal("6.25") + 3000 * Decimal("0.50") + 87 * Decimal(25)) / M
    assert calculator.cost("claude-opus-4-5", usage) == expected == Decimal("0.004985")
