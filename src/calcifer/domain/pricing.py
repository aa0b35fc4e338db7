"""Prices as data: per-model `PricingConfig`s, long-context tiers and dated price changes.

Rates are USD per 1K tokens (the original design's unit) and always `Decimal`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from calcifer.domain.families import ModelFamilies

_PER_1K_FROM_PER_1M = Decimal(1000)


@dataclass(frozen=True, slots=True)
class PricingConfig:
    """USD per 1K tokens for each token class. A missing special rate falls back to its base rate.

    `tiers` hold long-context prices: once the prompt has more than `threshold` tokens, every token of
    the request is priced with that tier's config (cliff semantics, as Google and OpenAI bill).
    """

    input_cost_per_1k: Decimal
    output_cost_per_1k: Decimal
    cached_input_cost_per_1k: Decimal | None = None
    cache_write_cost_per_1k: Decimal | None = None
    reasoning_cost_per_1k: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    # Anthropic's 1-hour cache write rate, carried for display: `Usage` has no 1h count, so every
    # cache write is priced at `cache_write_cost_per_1k` (the 5-minute rate).
    cache_write_1h_cost_per_1k: Decimal | None = None

    @classmethod
    def per_million(
        cls,
        input: Decimal | str,
        output: Decimal | str,
        *,
        cached_input: Decimal | str | None = None,
        cache_write: Decimal | str | None = None,
        reasoning: Decimal | str | None = None,
        tiers: tuple[PriceTier, ...] = (),
        cache_write_1h: Decimal | str | None = None,
    ) -> PricingConfig:
        """Build a config from USD-per-1M rates, the unit price lists use."""

        def k(v: Decimal | str | None) -> Decimal | None:
            return None if v is None else Decimal(v) / _PER_1K_FROM_PER_1M

        return cls(
            input_cost_per_1k=Decimal(input) / _PER_1K_FROM_PER_1M,
            output_cost_per_1k=Decimal(output) / _PER_1K_FROM_PER_1M,
            cached_input_cost_per_1k=k(cached_input),
            cache_write_cost_per_1k=k(cache_write),
            reasoning_cost_per_1k=k(reasoning),
            tiers=tiers,
            cache_write_1h_cost_per_1k=k(cache_write_1h),
        )

    def for_prompt(self, prompt_tokens: int) -> PricingConfig:
        """The config in force for a request with this many prompt tokens: the highest tier passed."""
        chosen, passed = self, -1
        for tier in self.tiers:
            if passed < tier.threshold < prompt_tokens:
                chosen, passed = tier.config, tier.threshold
        return chosen


@dataclass(frozen=True, slots=True)
class PriceTier:
    threshold: int
    config: PricingConfig


@dataclass(frozen=True, slots=True)
class _Dated:
    since: datetime | None
    config: PricingConfig


class PricingRegistry:
    """Model → prices, with the price history of each model. Built at start-up, read per request."""

    def __init__(self, version: str = "builtin") -> None:
        self.version = version
        self.families = ModelFamilies()  # dated snapshot names, priced as their family's model
        self._prices: dict[str, list[_Dated]] = {}
        self._sources: dict[str, str] = {}

    def register(
        self, model: str, config: PricingConfig, *, since: datetime | None = None, source: str | None = None
    ) -> None:
        """Add a price for `model`, in force from `since` (always, when None) until a later one;
        `source` says where it came from (the catalogue, named by `version`, when None)."""
        if source is not None:
            self._sources[model] = source
        history = self._prices.setdefault(model, [])
        history.append(_Dated(since, config))
        history.sort(key=lambda d: (d.since is not None, d.since or datetime.min))

    def get(self, model: str, at: datetime | float | None = None) -> PricingConfig | None:
        """The price of `model` in force at `at` (the newest when None), or None when unpriced. `at` is a
        datetime or seconds since the epoch, made a datetime only for a model with dated prices."""
        history = self._prices.get(model)
        if not history:
            family = self.families.canonical(model) if self.families else None
            history = self._prices.get(family) if family is not None else None
            if not history:
                return None
        if at is None or len(history) == 1:
            return history[-1].config
        if not isinstance(at, datetime):
            at = datetime.fromtimestamp(at, UTC)
        keys = [d.since for d in history]
        dated = [k for k in keys if k is not None]
        undated = len(keys) - len(dated)
        index = bisect_right(dated, at) + undated - 1
        return history[max(index, 0)].config

    def served(self, provider: str, model: str, at: datetime | float | None = None) -> PricingConfig | None:
        """The price of `model` as `provider` serves it: a price registered for `<provider>/<model>`
        (one vendor's price of a model several serve) first, else the model's own."""
        return self.get(self._billed_name(provider, model), at)

    def served_as(
        self, provider: str, model: str, at: datetime | None = None
    ) -> tuple[PricingConfig | None, str | None]:
        """What the gateway bills when `provider` serves `model`: the price `served` gives and where
        that price comes from (both None when unpriced)."""
        name = self._billed_name(provider, model)
        return self.get(name, at), self.source(name)

    def _billed_name(self, provider: str, model: str) -> str:
        if not provider:
            return model
        qualified = f"{provider}/{model}"
        return qualified if qualified in self._prices else model

    def source(self, model: str) -> str | None:
        """Where the price of `model` comes from, or None when it is unpriced."""
        name = model if model in self._prices else self.families.canonical(model) if self.families else None
        if name is None or name not in self._prices:
            return None
        origin = self._sources.get(name, f"catalogue {self.version}")
        return origin if name == model else f"{origin}, as {name}"

    def history(self, model: str) -> tuple[tuple[datetime | None, PricingConfig], ...]:
        """Every price registered for `model`, oldest first, each with the date it took effect."""
        return tuple((d.since, d.config) for d in self._prices.get(model, ()))

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)
