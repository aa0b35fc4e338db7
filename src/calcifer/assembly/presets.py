"""The vendor presets the environment enables, as providers with their catalogue prices.

Every model of a preset is reached as `<vendor>/<model>` and priced under that name from the vendor's
own catalogue entry (two vendors may charge differently for one model). A preset also claims the bare
names no provider before it took (built-in providers and the config file first, then the presets in
their fixed order), except OpenRouter, whose ids are other vendors' names. The `<vendor>/<model>` form
also takes a model the price list does not know (a new model, a fine-tune): it is sent as named and
answered unpriced (`cost: null`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calcifer.catalogue.book import CatalogueEntry, PriceBook, register_history
from calcifer.config.presets import EnabledPreset
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.providers.openai import OpenAIProvider


@dataclass(frozen=True, slots=True)
class PresetProvider:
    provider: OpenAIProvider
    bare: frozenset[str]  # the bare names it claims


def build_presets(presets: list[EnabledPreset], book: PriceBook, taken: set[str]) -> list[PresetProvider]:
    """One provider per enabled preset; `taken` (the bare names already claimed) grows with theirs."""
    built: list[PresetProvider] = []
    for enabled in presets:
        preset = enabled.preset
        catalogue = frozenset(book.entries(preset.catalogue)) if preset.catalogue else frozenset()
        models = catalogue | enabled.models
        provider = OpenAIProvider(
            models=models,
            api_key=enabled.api_key,
            base_url=enabled.base_url,
            timeout=enabled.timeout,
            name=preset.name,
            credential_setting=enabled.credential_setting,
            key_required=not preset.local,
            any_model=True,  # `<vendor>/<model>` takes models the price list does not know yet
            embeddings_dialect=preset.embeddings,
            model_prefix=preset.model_prefix,
        )
        bare = (models if preset.bare else enabled.models) - taken
        taken.update(bare)
        built.append(PresetProvider(provider, bare))
    return built


def register_presets(
    built: list[PresetProvider],
    presets: list[EnabledPreset],
    book: PriceBook,
    registry: ProviderRegistry,
    pricing: PricingRegistry,
    overrides: Mapping[str, PricingConfig],
) -> dict[str, RetryPolicy]:
    """Route and price the preset providers; their retry policies by provider name."""
    policies: dict[str, RetryPolicy] = {}
    for item, enabled in zip(built, presets, strict=True):
        provider, catalogue = item.provider, enabled.preset.catalogue
        registry.register(provider, claim=item.bare)
        policies[provider.name] = RetryPolicy(max_retries=enabled.max_retries)
        prefix = provider.name + "/"

        def find(name: str, catalogue: str | None = catalogue, prefix: str = prefix) -> CatalogueEntry | None:
            return book.lookup(catalogue, name.removeprefix(prefix)) if catalogue else None

        register_history(pricing, sorted(prefix + m for m in provider.models), find, overrides)
        register_history(pricing, sorted(m for m in item.bare if m not in pricing), find, overrides)
    return policies
