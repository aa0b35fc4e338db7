"""The price catalogue as the running gateway holds it: a compact snapshot, read in a child process.

Loading `genai-prices` costs some 30 MB of memory for data on thousands of models the gateway never
routes. So the gateway asks a short-lived child process (`python -m calcifer.catalogue.source`) for only
what it needs — every chat model of its built-in providers, plus the models its config file and
plugins name — and keeps that snapshot. Nothing is lost: the snapshot is exactly what
`calcifer.catalogue.source` reads from the package (a test compares the two).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson

from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry

BUILTIN = ("openai", "anthropic", "google", "openai.embeddings", "google.embeddings")
History = tuple[tuple[datetime | None, PricingConfig], ...]


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One model of the catalogue: its prices over time, its context window and maximum output."""

    model: str
    history: History
    context_window: int | None
    max_output_tokens: int | None = None


class PriceBook:
    """Catalogue entries by provider: the built-in providers' chat models, and looked-up names."""

    def __init__(self, snapshot: Mapping[str, object]) -> None:
        self.version = str(snapshot["version"])
        builtin = snapshot.get("builtin")
        lookups = snapshot.get("lookups")
        families = snapshot.get("families")
        self._families = {
            provider: [(str(prefix), str(model)) for prefix, model in pairs]
            for provider, pairs in (families.items() if isinstance(families, dict) else ())
        }
        self._builtin = {
            provider: {m: _entry(e) for m, e in models.items()}
            for provider, models in (builtin.items() if isinstance(builtin, dict) else ())
        }
        self._lookups = {
            tuple(key.split("\t", 1)): (None if e is None else _entry(e))
            for key, e in (lookups.items() if isinstance(lookups, dict) else ())
        }

    def families(self, provider_id: str) -> list[tuple[str, str]]:
        """(prefix, model) pairs: the dated snapshot names of a built-in provider's models."""
        return list(self._families.get(provider_id, ()))

    def entries(self, provider_id: str) -> dict[str, CatalogueEntry]:
        return dict(self._builtin.get(provider_id, {}))

    def lookup(self, provider_id: str, model: str) -> CatalogueEntry | None:
        builtin = self._builtin.get(provider_id, {}).get(model)
        return builtin if builtin is not None else self._lookups.get((provider_id, model))

    def max_output(self) -> dict[str, int]:
        return {
            model: entry.max_output_tokens
            for models in self._builtin.values()
            for model, entry in models.items()
            if entry.max_output_tokens is not None
        }

    def register(
        self,
        pricing: PricingRegistry,
        provider_id: str,
        models: Iterable[str],
        overrides: Mapping[str, PricingConfig] | None = None,
    ) -> list[str]:
        """Register each model's price history (an override replaces it whole); return the unpriced."""
        return register_history(pricing, models, lambda model: self.lookup(provider_id, model), overrides)


def register_history(
    pricing: PricingRegistry,
    models: Iterable[str],
    find: Callable[[str], CatalogueEntry | None],
    overrides: Mapping[str, PricingConfig] | None = None,
) -> list[str]:
    """Register the price history `find` gives each model under the model's own name; a model in
    `overrides` (the config file's prices) gets that price alone, never mixed with the catalogue's
    history. Returns the models left unpriced."""
    unpriced: list[str] = []
    for model in models:
        override = (overrides or {}).get(model)
        if override is not None:
            pricing.register(model, override, source="config file or plugin")
            continue
        entry = find(model)
        if entry is None or not entry.history:
            unpriced.append(model)
            continue
        for since, config in entry.history:
            pricing.register(model, config, since=since)
    return unpriced


def load_price_book(lookups: Iterable[tuple[str, str]] = (), vendors: Iterable[str] = ()) -> PriceBook:
    """The snapshot for the built-in providers, every model of the catalogue providers `vendors`
    (the enabled vendor presets), plus `lookups` ((catalogue provider id, model) pairs)."""
    builtin = [*BUILTIN, *(v for v in dict.fromkeys(vendors) if v not in BUILTIN)]
    request = orjson.dumps({"builtin": builtin, "lookups": sorted(set(lookups))})
    result = subprocess.run(
        [sys.executable, "-m", "calcifer.catalogue.source"],
        input=request,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"could not read the price catalogue: {detail[0]}")
    snapshot = orjson.loads(result.stdout)
    if not isinstance(snapshot, dict):
        raise RuntimeError("the price catalogue snapshot is not a JSON object")
    return PriceBook(snapshot)


def encode_config(config: PricingConfig) -> dict[str, object]:
    """A `PricingConfig` as JSON (exact decimal strings, USD per 1K tokens)."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "input": text(config.input_cost_per_1k),
        "output": text(config.output_cost_per_1k),
        "cached_input": text(config.cached_input_cost_per_1k),
        "cache_write": text(config.cache_write_cost_per_1k),
        "cache_write_1h": text(config.cache_write_1h_cost_per_1k),
        "reasoning": text(config.reasoning_cost_per_1k),
        "tiers": [[tier.threshold, encode_config(tier.config)] for tier in config.tiers],
    }


def decode_config(raw: Mapping[str, object]) -> PricingConfig:
    def number(key: str) -> Decimal | None:
        value = raw.get(key)
        return None if value is None else Decimal(str(value))

    tiers = raw.get("tiers")
    return PricingConfig(
        input_cost_per_1k=number("input") or Decimal(0),
        output_cost_per_1k=number("output") or Decimal(0),
        cached_input_cost_per_1k=number("cached_input"),
        cache_write_cost_per_1k=number("cache_write"),
        cache_write_1h_cost_per_1k=number("cache_write_1h"),
        reasoning_cost_per_1k=number("reasoning"),
        tiers=tuple(PriceTier(int(t[0]), decode_config(t[1])) for t in tiers)
        if isinstance(tiers, list)
        else (),
    )


def _entry(raw: Mapping[str, object]) -> CatalogueEntry:
    history = raw.get("history")
    window = raw.get("context_window")
    limit = raw.get("max_output_tokens")
    return CatalogueEntry(
        model=str(raw["model"]),
        history=tuple(
            (None if since is None else datetime.fromisoformat(since), decode_config(config))
            for since, config in (history if isinstance(history, list) else ())
        ),
        context_window=window if isinstance(window, int) else None,
        max_output_tokens=limit if isinstance(limit, int) else None,
    )
