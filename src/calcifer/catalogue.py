"""The price catalogue: every model's prices, read from the maintained `genai-prices` data.

`genai-prices` (MIT, by Pydantic) carries Decimal prices per 1M tokens, cache read/write rates,
long-context tiers and dated price changes. This module turns its data into the domain's
`PricingConfig`s; nothing here is typed by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib.metadata import version

from genai_prices import data as _gp
from genai_prices import types as _gpt

from calcifer.domain.pricing import PriceTier, PricingConfig

_MTOK_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    model: str
    history: tuple[tuple[datetime | None, PricingConfig], ...]
    context_window: int | None


def catalogue_version() -> str:
    """Which price data is in force: the package version that carries it."""
    return f"genai-prices {version('genai-prices')}"


def provider_entries(provider_id: str) -> dict[str, CatalogueEntry]:
    """Every priced model of one genai-prices provider, by model id."""
    provider = next((p for p in _gp.providers if p.id == provider_id), None)
    if provider is None:
        return {}
    entries: dict[str, CatalogueEntry] = {}
    for model in provider.models:
        history = _history(model.prices)
        if history:
            entries[model.id] = CatalogueEntry(model.id, history, model.context_window)
    return entries


def _history(prices: object) -> tuple[tuple[datetime | None, PricingConfig], ...]:
    if isinstance(prices, _gpt.ModelPrice):
        config = _config(prices)
        return ((None, config),) if config else ()
    history: list[tuple[datetime | None, PricingConfig]] = []
    if isinstance(prices, list):
        for conditional in prices:
            constraint = conditional.constraint
            config = _config(conditional.prices)
            if config is None:
                continue
            if constraint is None:
                history.append((None, config))
            elif isinstance(constraint, _gpt.StartDateConstraint):
                history.append((_midnight(constraint.start_date), config))
            # Time-of-day prices (off-peak discounts) are not applied: the standard price stands.
    return tuple(history)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _config(price: _gpt.ModelPrice) -> PricingConfig | None:
    values = {f: getattr(price, f, None) for f in _MTOK_FIELDS}
    if values["input_mtok"] is None or values["output_mtok"] is None:
        return None
    thresholds = sorted(
        {t.start for v in values.values() if isinstance(v, _gpt.TieredPrices) for t in v.tiers}
    )
    tiers = tuple(PriceTier(start, _flat_config(values, start)) for start in thresholds)
    base = _flat_config(values, 0)
    return PricingConfig(
        input_cost_per_1k=base.input_cost_per_1k,
        output_cost_per_1k=base.output_cost_per_1k,
        cached_input_cost_per_1k=base.cached_input_cost_per_1k,
        cache_write_cost_per_1k=base.cache_write_cost_per_1k,
        tiers=tiers,
    )


def _flat_config(values: dict[str, object], tokens: int) -> PricingConfig:
    def at(field: str) -> Decimal | None:
        value = values[field]
        if isinstance(value, _gpt.TieredPrices):
            price = value.base
            for tier in value.tiers:
                if tokens >= tier.start:
                    price = tier.price
            return price
        return value if isinstance(value, Decimal) else None

    return PricingConfig.per_million(
        at("input_mtok") or Decimal(0),
        at("output_mtok") or Decimal(0),
        cached_input=at("cache_read_mtok"),
        cache_write=at("cache_write_mtok"),
    )


# OpenAI's price list also has models that its chat-completions endpoint does not serve.
_NOT_OPENAI_CHAT = re.compile(
    r"embedding|tts|whisper|transcribe|image|moderation|realtime|live|translate|davinci|babbage|curie|"
    r"^ada$|^ft:|\.ft-|computer-use|-pro$|codex|deep-research|search-api|:extended|^gpt-oss"
)


def openai_chat_entries() -> dict[str, CatalogueEntry]:
    """OpenAI's chat models on today's price list, with their prices."""
    return {m: e for m, e in provider_entries("openai").items() if not _NOT_OPENAI_CHAT.search(m)}
