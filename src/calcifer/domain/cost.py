"""Exact cost of a request from its usage and its price, in `Decimal`, every token class explicit."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.types import Usage

_log = logging.getLogger("calcifer.cost")
_QUANTUM = Decimal("1e-12")
_THOUSAND = Decimal(1000)
_ZERO = Decimal(0)


def cost_of(usage: Usage, price: PricingConfig) -> Decimal:
    """The USD cost of `usage` at `price`, quantised once to 1e-12 USD.

    Cached reads and cache writes are parts of the prompt and reasoning is part of the completion, so
    each token is priced exactly once: at its own class's rate, or its base rate when that is not set.
    """
    rates = price.for_prompt(usage.prompt_tokens)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    plain_input = usage.prompt_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    plain_output = usage.completion_tokens - reasoning
    total = (
        plain_input * rates.input_cost_per_1k
        + cached * _or(rates.cached_input_cost_per_1k, rates.input_cost_per_1k)
        + written * _or(rates.cache_write_cost_per_1k, rates.input_cost_per_1k)
        + plain_output * rates.output_cost_per_1k
        + reasoning * _or(rates.reasoning_cost_per_1k, rates.output_cost_per_1k)
    )
    return _quantised(total)


def _quantised(total_per_1k: Decimal) -> Decimal:
    """USD per 1K tokens times tokens, as USD quantised once to 1e-12 (never -0)."""
    return (total_per_1k / _THOUSAND).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN).normalize() + _ZERO


def _or(rate: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if rate is None else rate


class CostCalculator:
    """Prices usage against the registry; an unknown price is reported as None, never as 0."""

    def __init__(self, registry: PricingRegistry) -> None:
        self._registry = registry
        self._warned: set[str] = set()

    @property
    def registry(self) -> PricingRegistry:
        return self._registry

    def cost(
        self, model: str, usage: Usage | None, at: datetime | None = None, provider: str = ""
    ) -> Decimal | None:
        """The cost of `usage` of `model`; with `provider`, a price registered for
        `<provider>/<model>` (one vendor's price of a model others also serve) comes first."""
        if usage is None:
            return None
        price = self._registry.served(provider, model, at)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                _log.warning("model %r has no price: its cost is reported as null, not 0", model)
            return None
        return cost_of(usage, price)

    def worst_case(
        self, model: str, prompt_tokens: int, max_output_tokens: int, at: datetime | float | None = None
    ) -> Decimal | None:
        """The most a request can cost at `at` (a datetime or seconds since the epoch): its prompt plus
        `max_output_tokens`, all at full rates.

        The same value as `cost` of that usage (no cached, cache-write or reasoning tokens), without
        the terms that are zero: it is computed for every budgeted request."""
        price = self._registry.served("", model, at)
        if price is None:
            return self.cost(model, Usage(prompt_tokens, max_output_tokens))  # None, warned once
        rates = price.for_prompt(prompt_tokens)
        total = prompt_tokens * rates.input_cost_per_1k + max_output_tokens * rates.output_cost_per_1k
        return _quantised(total)
