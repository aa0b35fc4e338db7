"""Assemble the providers and the price registry from settings, the config file and plugins.

Explicit beats implicit: a model named in the config file or by a plugin is served by that provider,
and the built-in providers (which claim every model of their price catalogue) give the name up. Two
explicit claims of one name still fail start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from calcifer.assembly.cloud import (
    AWS_CATALOGUE,
    VERTEX_CATALOGUES,
    bedrock_region,
    build_bedrock,
    build_vertex,
)
from calcifer.assembly.file_providers import build_file_providers
from calcifer.assembly.plugins import load_plugins, plugin_prices
from calcifer.assembly.presets import build_presets, register_presets
from calcifer.catalogue.book import PriceBook, load_price_book
from calcifer.config.file import FileConfig, load_file_config
from calcifer.config.observability import ObservabilitySpec
from calcifer.config.presets import enabled_presets
from calcifer.config.reader import ConfigFileError
from calcifer.config.routing import RoutingFileSpec
from calcifer.config.settings import Settings, provider_settings
from calcifer.domain.attempts import RoutingConfig
from calcifer.domain.cache import CacheRule
from calcifer.domain.deployments import RouteError, build_routes
from calcifer.domain.families import ModelFamilies
from calcifer.domain.ports import Provider
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.providers.anthropic import AnthropicProvider
from calcifer.providers.bedrock import BedrockProvider
from calcifer.providers.echo import ECHO_MODEL, ECHO_PRICING, EchoProvider
from calcifer.providers.gemini import GEMINI_BASE_URL, GeminiProvider
from calcifer.providers.openai import OpenAIProvider

_log = logging.getLogger("calcifer")
# The genai-prices provider id to look a configured provider's models up under, by provider name.
_CATALOGUE_IDS = {"azure": ("azure", "openai"), "xai": ("x-ai",), "grok": ("x-ai",), "google": ("google",)}


@dataclass
class Assembly:
    registry: ProviderRegistry
    pricing: PricingRegistry
    policies: dict[str, RetryPolicy] = field(default_factory=dict)
    max_output: dict[str, int] = field(default_factory=dict)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    cache: RoutingFileSpec = field(default_factory=RoutingFileSpec)  # the cache's backend and size
    observability: ObservabilitySpec = field(default_factory=ObservabilitySpec)


def assemble(settings: Settings, *, with_plugins: bool = True) -> Assembly:
    """Every provider Calcifer routes to, with its prices, retry policy and maximum output per model."""
    env: Mapping[str, str] = settings.env or {}
    file_config = load_file_config(settings.config_file) if settings.config_file else None
    explicit: list[Provider] = build_file_providers(file_config, env) if file_config else []
    plugins = load_plugins(env) if with_plugins else []
    explicit += plugins
    presets = enabled_presets(env, frozenset(p.name for p in explicit))
    book = load_price_book(
        (
            (catalogue_id, model)
            for provider in explicit
            for catalogue_id in _catalogue_ids(provider)
            for model in provider.models
        ),
        [
            *(p.preset.catalogue for p in presets if p.preset.catalogue),
            *([AWS_CATALOGUE] if bedrock_region(env) else []),
            *(VERTEX_CATALOGUES if env.get("VERTEX_PROJECT", "").strip() else ()),
        ],
    )
    pricing = PricingRegistry(version=book.version)
    pricing.register(ECHO_MODEL, ECHO_PRICING, source="built in")
    overrides: dict[str, PricingConfig] = {
        **plugin_prices(plugins),
        **(file_config.prices() if file_config else {}),
    }
    unclaimed = file_config.unclaimed() if file_config else frozenset()
    taken = {model for provider in explicit if provider.name not in unclaimed for model in provider.models}

    anthropic = provider_settings(env, "ANTHROPIC", "https://api.anthropic.com")
    gemini = provider_settings(env, "GEMINI", GEMINI_BASE_URL)
    openai_embeddings = frozenset(book.entries("openai.embeddings")) - taken
    gemini_embeddings = frozenset(book.entries("google.embeddings")) - taken
    openai_models = frozenset(book.entries("openai")) - taken
    anthropic_models = frozenset(book.entries("anthropic")) - taken
    gemini_models = frozenset(book.entries("google")) - taken
    max_output = book.max_output()
    builtin: list[Provider] = [
        OpenAIProvider(
            models=openai_models | openai_embeddings,
            api_key=settings.openai.api_key,
            base_url=settings.openai.base_url,
            timeout=settings.openai.timeout,
            responses=True,
        ),
        AnthropicProvider(
            models=anthropic_models,
            max_output=max_output,
            api_key=anthropic.api_key,
            base_url=anthropic.base_url,
            timeout=anthropic.timeout,
        ),
        GeminiProvider(
            models=gemini_models | gemini_embeddings,
            api_key=gemini.api_key,
            base_url=gemini.base_url,
            timeout=gemini.timeout,
        ),
    ]
    book.register(pricing, "openai", openai_models, overrides)
    book.register(pricing, "anthropic", anthropic_models, overrides)
    book.register(pricing, "google", gemini_models, overrides)
    book.register(pricing, "openai.embeddings", openai_embeddings, overrides)
    book.register(pricing, "google.embeddings", gemini_embeddings, overrides)
    for provider in explicit:
        _price_explicit(book, pricing, provider, overrides)

    registry = ProviderRegistry([EchoProvider(), *builtin, *(p for p in explicit if p.name not in unclaimed)])
    for provider in explicit:
        if provider.name in unclaimed:
            registry.register(provider, claim=False)
    aliases = {spec.alias for spec in file_config.aliases} if file_config else set()
    claimed = {model for model, _ in registry.models()} | aliases
    vendors = build_presets(presets, book, claimed)
    preset_policies = register_presets(vendors, presets, book, registry, pricing, overrides)
    for cloud in (
        build_bedrock(env, book, claimed, pricing, overrides),
        build_vertex(env, book, claimed, pricing, overrides),
    ):
        if cloud is not None:
            registry.register(cloud.provider, claim=cloud.bare)
            preset_policies[cloud.provider.name] = cloud.policy
    if file_config is not None:
        for alias, target in file_config.aliases_for({m for m, _ in registry.models()}).items():
            registry.alias(alias, target)
    builtin_models = (("openai", openai_models), ("anthropic", anthropic_models), ("google", gemini_models))
    families = ModelFamilies(
        pair
        for provider_id, models in builtin_models
        for pair in book.families(provider_id)
        if pair[1] in models
    )
    registry.families = pricing.families = families
    policies = {
        "openai": RetryPolicy(max_retries=settings.openai.max_retries),
        "anthropic": RetryPolicy(max_retries=anthropic.max_retries),
        "gemini": RetryPolicy(max_retries=gemini.max_retries),
    }
    policies.update(preset_policies)
    if file_config is not None:
        policies.update({name: RetryPolicy(max_retries=n) for name, n in file_config.max_retries().items()})
    spec = file_config.routing if file_config is not None else None
    if file_config is None:
        return Assembly(registry, pricing, policies, max_output)
    if spec is None:
        return Assembly(registry, pricing, policies, max_output, observability=file_config.observability)
    routing = _routing(file_config, spec, registry, pricing)
    return Assembly(registry, pricing, policies, max_output, routing, spec, file_config.observability)


def _routing(
    cfg: FileConfig, spec: RoutingFileSpec, registry: ProviderRegistry, pricing: PricingRegistry
) -> RoutingConfig:
    """The declared routes, checked against the providers now that every one is registered."""

    def unit_price(model: str) -> Decimal | None:
        price = pricing.get(model)
        return None if price is None else price.input_cost_per_1k + price.output_cost_per_1k

    try:
        routes = build_routes(registry, spec.routes, unit_price)
    except RouteError as error:
        raise ConfigFileError(cfg.path, error.line or None, error.problem) from error
    unlisted = {
        d.key
        for route in routes.values()
        for group in (route.group, *route.fallbacks, *route.context_fallbacks)
        for d in group.deployments
        if not d.provider.supports(d.model)
    }
    if unlisted:  # allowed (a provider may serve more than it lists), but often a typo
        _log.warning("deployments of models their provider does not list: %s", ", ".join(sorted(unlisted)))
    return RoutingConfig(
        routes, spec.cooldown, spec.request_timeout, spec.cache_rules, CacheRule(False, spec.cache_ttl)
    )


def _catalogue_ids(provider: Provider) -> tuple[str, ...]:
    """Where a configured provider's prices are looked up: by its kind, else by its name."""
    if isinstance(provider, BedrockProvider):
        return (AWS_CATALOGUE,)
    return _CATALOGUE_IDS.get(provider.name, (provider.name,))


def _price_explicit(
    book: PriceBook, pricing: PricingRegistry, provider: Provider, overrides: Mapping[str, PricingConfig]
) -> None:
    remaining = set(provider.models)
    for catalogue_id in _catalogue_ids(provider):
        remaining = set(book.register(pricing, catalogue_id, remaining, overrides))
        if not remaining:
            return
    remaining = {m for m in remaining if m not in pricing}  # a deployment of a model priced elsewhere
    if remaining:
        _log.warning(
            "provider %r has models without a price (their cost is reported as null): %s",
            provider.name,
            ", ".join(sorted(remaining)),
        )
