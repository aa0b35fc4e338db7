"""The price catalogue: every model's prices, read from the maintained `genai-prices` data.

`genai-prices` (MIT, by Pydantic) carries Decimal prices per 1M tokens, cache read/write rates,
long-context tiers and dated price changes. This module turns its data into the domain's
`PricingConfig`s; no price here is typed by hand. Token classes the domain's `Usage` does not count
(audio, images, web searches) are not carried. Time-of-day discounts and request variants (batch,
service tiers) are not applied: the standard price stands.

Only the maximum output per Anthropic model is a hand-kept table (genai-prices has no such field),
copied from Anthropic's model overview pages (platform.claude.com/docs/en/models/<model>/overview,
"Max output"), checked 2026-11-27.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib.metadata import version

from genai_prices import data as _gp
from genai_prices import types as _gpt
from genai_prices.data_snapshot import find_provider_by_id

from calcifer.catalogue.book import CatalogueEntry, History, encode_config, register_history
from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry

_MTOK_FIELDS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")


def catalogue_version() -> str:
    """Which price data is in force: the genai-prices version and the newest price change it knows."""
    newest = data_date()
    stamp = f" (newest price dated {newest.isoformat()})" if newest else ""
    return f"genai-prices {version('genai-prices')}{stamp}"


@cache
def data_date() -> date | None:
    """The newest start date of any price in the data (the package exposes no date of its own)."""
    starts = [
        conditional.constraint.start_date
        for provider in _gp.providers
        for model in provider.models
        if isinstance(model.prices, list)
        for conditional in model.prices
        if isinstance(conditional.constraint, _gpt.StartDateConstraint)
    ]
    return max(starts, default=None)


def lookup(provider_id: str, model: str) -> CatalogueEntry | None:
    """The catalogue entry of `model` at a genai-prices provider, or None when it has no price.

    The model is found by the data's own `match` clauses (so a dated id such as
    `claude-sonnet-4-20250514` finds `claude-sonnet-4-0`), with the provider's fallback providers.
    """
    provider = find_provider_by_id(_gp.providers, provider_id)
    if provider is None:
        return None
    info = provider.find_model(model, all_providers=_gp.providers)
    return None if info is None else _entry(info, provider.id)


def provider_entries(provider_id: str) -> dict[str, CatalogueEntry]:
    """Every priced model of one genai-prices provider, by model id and by every exact name its match
    clauses give it (dated ids such as `claude-sonnet-4-20250514` or `gpt-4o-2024-08-06`)."""
    provider = next((p for p in _gp.providers if p.id == provider_id), None)
    if provider is None:
        return {}
    entries: dict[str, CatalogueEntry] = {}
    for model in provider.models:
        entry = _entry(model, provider_id)
        if entry is not None:
            entries[model.id] = entry
            for name in _exact_names(model.match):
                entries.setdefault(name, entry)
    return entries


# OpenAI's price list also has models that its chat-completions endpoint does not serve.
_NOT_OPENAI_CHAT = re.compile(
    r"embedding|tts|whisper|transcribe|image|moderation|realtime|live|translate|davinci|babbage|curie|"
    r"^ada$|^text-|instruct|-pro(-|$)|^gpt-35|^chat-latest$|^ft:|\.ft-|computer-use|codex|deep-research|"
    r"search-api|:extended|^gpt-oss"
)
# Embedding models: priced by input alone, served by `/v1/embeddings`.
_EMBEDDING = re.compile(r"embed")
_EMBEDDING_VENDORS = frozenset({"voyageai"})  # every model an embedding (or reranking) model
# Google's list also has Claude on Vertex, embeddings, speech and Live-API models: not `generateContent`.
_NOT_GEMINI_CHAT = re.compile(r"^claude|/|image|embedding|tts|live|native-audio")


def openai_chat_entries() -> dict[str, CatalogueEntry]:
    """OpenAI's chat models on today's price list, with their prices."""
    return _chat(provider_entries("openai"), _NOT_OPENAI_CHAT)


def anthropic_entries() -> dict[str, CatalogueEntry]:
    """Anthropic's models on today's price list, with their prices and maximum output."""
    return provider_entries("anthropic")


def gemini_entries() -> dict[str, CatalogueEntry]:
    """Google's models served by the Gemini API's `generateContent`, with their prices."""
    return _chat(provider_entries("google"), _NOT_GEMINI_CHAT)


def openai_embedding_entries() -> dict[str, CatalogueEntry]:
    """OpenAI's embedding models, with their prices (input only)."""
    return {m: e for m, e in provider_entries("openai").items() if _EMBEDDING.search(e.model)}


def gemini_embedding_entries() -> dict[str, CatalogueEntry]:
    """Google's embedding models of the Gemini API (`batchEmbedContents`), with their prices."""
    entries = provider_entries("google").items()
    return {m: e for m, e in entries if _EMBEDDING.search(e.model) and "/" not in m}


def vertex_claude_entries() -> dict[str, CatalogueEntry]:
    """Claude on Vertex AI (Google's price list), with its prices."""
    return {m: e for m, e in provider_entries("google").items() if m.startswith("claude")}


def _chat(entries: dict[str, CatalogueEntry], excluded: re.Pattern[str]) -> dict[str, CatalogueEntry]:
    """The entries whose name and model id are both chat models."""
    return {m: e for m, e in entries.items() if not excluded.search(m) and not excluded.search(e.model)}


def register_prices(
    pricing: PricingRegistry,
    provider_id: str,
    models: Iterable[str],
    overrides: Mapping[str, PricingConfig] | None = None,
) -> list[str]:
    """Register the price history of each routable `model` under its own name; the models left unpriced.

    A model in `overrides` (the config file's prices) gets that price alone, never mixed with the
    catalogue's history. Others are looked up at `provider_id` by the data's match clauses.
    """
    return register_history(pricing, models, lambda model: lookup(provider_id, model), overrides)


# Anthropic's published "Max output" per model (genai-prices model id -> tokens); see the module doc.
_ANTHROPIC_MAX_OUTPUT = {
    "claude-v1": 4_096,
    "claude-2": 4_096,
    "claude-3-haiku": 4_096,
    "claude-3-sonnet": 4_096,
    "claude-3-opus-latest": 4_096,
    "claude-3-5-haiku-latest": 8_192,
    "claude-3-5-sonnet": 8_192,
    "claude-3-7-sonnet-latest": 64_000,
    "claude-sonnet-4-0": 64_000,
    "claude-opus-4-0": 32_000,
    "claude-opus-4-1": 32_000,
    "claude-sonnet-4-5": 64_000,
    "claude-haiku-4-5": 64_000,
    "claude-opus-4-5": 64_000,
    "claude-opus-4-6": 128_000,
    "claude-sonnet-4-6": 128_000,
    "claude-opus-4-7": 128_000,
    "claude-opus-4-8": 128_000,
    "claude-opus-5": 128_000,
    "claude-opus-5-5": 128_000,
    "claude-sonnet-5": 128_000,
    "claude-sonnet-5-5": 128_000,
    "claude-haiku-5-5": 128_000,
    "claude-fable-5": 128_000,
    "claude-fable-5-1": 128_000,
    "claude-fable-5-2": 128_000,
    "claude-mythos-5-2": 128_000,
}
_MAX_OUTPUT = {"anthropic": _ANTHROPIC_MAX_OUTPUT}


def max_output_tokens(provider_id: str) -> dict[str, int]:
    """Each catalogue model's maximum output tokens, by model id and its exact aliases in the data
    (e.g. `claude-opus-4-20250514`). Empty for a provider whose data has none."""
    table = _MAX_OUTPUT.get(provider_id, {})
    provider = next((p for p in _gp.providers if p.id == provider_id), None)
    if provider is None:
        return {}
    result: dict[str, int] = {}
    for model in provider.models:
        limit = table.get(model.id)
        if limit is not None:
            result.update(dict.fromkeys((model.id, *_exact_names(model.match)), limit))
    return result


def max_output_for(provider_id: str, model: str) -> int | None:
    """The maximum output of any name of a model (dated ids included), by the data's match clauses."""
    provider = find_provider_by_id(_gp.providers, provider_id)
    info = None if provider is None else provider.find_model(model, all_providers=_gp.providers)
    return None if info is None else _MAX_OUTPUT.get(provider_id, {}).get(info.id)


def family_prefixes(provider_id: str, entries: Mapping[str, CatalogueEntry]) -> list[tuple[str, str]]:
    """(prefix, model) for every `starts_with` match clause of a routable model: the names its dated
    snapshots begin with (see `calcifer.domain.families`)."""
    provider = next((p for p in _gp.providers if p.id == provider_id), None)
    if provider is None:
        return []
    return [
        (prefix, model.id)
        for model in provider.models
        if model.id in entries
        for prefix in _prefixes(model.match)
    ]


def _prefixes(clause: object) -> list[str]:
    if isinstance(clause, _gpt.ClauseStartsWith):
        return [clause.starts_with]
    if isinstance(clause, _gpt.ClauseOr):
        return [prefix for inner in clause.or_ for prefix in _prefixes(inner)]
    return []


def _exact_names(clause: object) -> list[str]:
    if isinstance(clause, _gpt.ClauseEquals):
        return [clause.equals]
    if isinstance(clause, _gpt.ClauseOr):
        return [name for inner in clause.or_ for name in _exact_names(inner)]
    return []


def _entry(info: _gpt.ModelInfo, provider_id: str) -> CatalogueEntry | None:
    embedding = _EMBEDDING.search(info.id) is not None or provider_id in _EMBEDDING_VENDORS
    history = _history(info.prices, embedding=embedding)
    if not history:
        return None
    limit = _MAX_OUTPUT.get(provider_id, {}).get(info.id)
    return CatalogueEntry(info.id, history, info.context_window, limit)


def _history(prices: object, embedding: bool = False) -> History:
    if isinstance(prices, _gpt.ModelPrice):
        config = _config(prices, embedding)
        return ((None, config),) if config else ()
    history: list[tuple[datetime | None, PricingConfig]] = []
    if isinstance(prices, list):
        for conditional in prices:
            constraint = conditional.constraint
            config = _config(conditional.prices, embedding)
            if config is None:
                continue
            if constraint is None:
                history.append((None, config))
            elif isinstance(constraint, _gpt.StartDateConstraint):
                history.append((_midnight(constraint.start_date), config))
            # Time-of-day prices (off-peak discounts) are not applied: the standard price stands.
    return tuple(history)


def _midnight(day: date) -> datetime:
    """genai-prices starts a dated price at the request's UTC date: midnight UTC of that day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _config(price: _gpt.ModelPrice, embedding: bool = False) -> PricingConfig | None:
    """The prices of a model; None without an input and an output price, except that an embedding
    model (which has no output, and is priced by input alone) charges 0 for output."""
    values = {f: getattr(price, f, None) for f in _MTOK_FIELDS}
    if embedding and values["output_mtok"] is None:
        values["output_mtok"] = Decimal(0)
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
        cache_write_1h_cost_per_1k=base.cache_write_1h_cost_per_1k,
    )


def _flat_config(values: dict[str, object], tokens: int) -> PricingConfig:
    """The flat rates of every token class once the prompt has passed `tokens` (a tier's start)."""

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
        cache_write_1h=at("cache_write_1h_mtok"),
    )


def snapshot(builtin: Iterable[str], lookups: Iterable[tuple[str, str]]) -> dict[str, object]:
    """What a gateway needs of the catalogue, as JSON-ready data (see `calcifer.catalogue.book`)."""

    def encode(entry: CatalogueEntry) -> dict[str, object]:
        return {
            "model": entry.model,
            "history": [[None if s is None else s.isoformat(), encode_config(c)] for s, c in entry.history],
            "context_window": entry.context_window,
            "max_output_tokens": entry.max_output_tokens,
        }

    readers = {
        "openai": openai_chat_entries,
        "anthropic": anthropic_entries,
        "google": gemini_entries,
        "openai.embeddings": openai_embedding_entries,
        "google.embeddings": gemini_embedding_entries,
        "google.claude": vertex_claude_entries,
    }
    found = {key: lookup(*key) for key in lookups}
    entries = {p: readers[p]() if p in readers else provider_entries(p) for p in builtin}
    return {
        "version": catalogue_version(),
        "builtin": {p: {m: encode(e) for m, e in models.items()} for p, models in entries.items()},
        "families": {p: family_prefixes(p, models) for p, models in entries.items()},
        "lookups": {f"{p}\t{m}": None if e is None else encode(e) for (p, m), e in found.items()},
    }


def _main() -> None:
    import sys

    import orjson

    request = orjson.loads(sys.stdin.buffer.read() or b"{}")
    pairs = [(str(p), str(m)) for p, m in request.get("lookups", [])]
    sys.stdout.buffer.write(
        orjson.dumps(snapshot(request.get("builtin", ["openai", "anthropic", "google"]), pairs))
    )


if __name__ == "__main__":
    _main()
