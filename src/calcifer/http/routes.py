"""The route table, and the model list."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.http.asgi import Route
from calcifer.http.chat import chat_completions, completions
from calcifer.http.embeddings import embeddings
from calcifer.http.health import health, live, ready, ready_probe


def models_body(
    registry: ProviderRegistry,
    created: int | None = None,
    pricing: PricingRegistry | None = None,
    at: datetime | None = None,
) -> bytes:
    """OpenAI's model list, built once at start-up: every routable name (bare, and as
    `<provider>/<model>`), each once, owned by the provider that serves it.

    With `pricing`, each entry also carries the price in force at `at` (start-up when None) as exact
    decimal strings per 1M tokens (`pricing: null` for an unpriced model); an alias shows its target's.
    """
    stamp = int(time.time()) if created is None else created
    now = at or datetime.now(UTC)
    data: list[dict[str, object]] = []
    for model, provider in sorted(registry.addressable(), key=lambda item: item[0]):
        entry: dict[str, object] = {
            "id": model,
            "object": "model",
            "created": stamp,
            "owned_by": provider.name,
        }
        if pricing is not None:
            price = pricing.served(provider.name, registry.resolve(model)[1], now)
            entry["pricing"] = None if price is None else pricing_json(price, pricing.version)
        data.append(entry)
    return orjson.dumps({"object": "list", "data": data})


def anthropic_models_body(registry: ProviderRegistry, created: int | None = None) -> bytes:
    """Anthropic's model list (Models API), built once at start-up: every routable model, one page."""
    stamp = int(time.time()) if created is None else created
    at = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [
        {"type": "model", "id": model, "display_name": model, "created_at": at}
        for model in sorted(name for name, _ in registry.addressable())
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return orjson.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last})


def pricing_json(price: PricingConfig, catalogue: str) -> dict[str, object]:
    body: dict[str, object] = _rates_json(price)
    body["tiers"] = [
        {"prompt_tokens_above": tier.threshold, **_rates_json(tier.config)}
        for tier in sorted(price.tiers, key=lambda t: t.threshold)
    ]
    body["currency"] = "USD"
    body["catalogue"] = catalogue
    return body


def _rates_json(price: PricingConfig) -> dict[str, object]:
    """Each token class's rate as charged (a class without its own rate is charged its base rate)."""
    cache_write = _or(price.cache_write_cost_per_1k, price.input_cost_per_1k)
    return {
        "input_per_1m": _per_1m(price.input_cost_per_1k),
        "cached_input_per_1m": _per_1m(_or(price.cached_input_cost_per_1k, price.input_cost_per_1k)),
        "cache_write_per_1m": _per_1m(cache_write),
        "cache_write_1h_per_1m": _per_1m(_or(price.cache_write_1h_cost_per_1k, cache_write)),
        "output_per_1m": _per_1m(price.output_cost_per_1k),
        "reasoning_per_1m": _per_1m(_or(price.reasoning_cost_per_1k, price.output_cost_per_1k)),
    }


def _or(rate: Decimal | None, base: Decimal) -> Decimal:
    return base if rate is None else rate


def _per_1m(per_1k: Decimal) -> str:
    return format((per_1k * 1000).normalize(), "f")


async def list_models(request: Request) -> Response:
    """OpenAI's list, or Anthropic's for a request that carries `anthropic-version` (Claude Code's)."""
    state = request.app.state
    anthropic = "anthropic-version" in request.headers
    return Response(
        state.anthropic_models_body if anthropic else state.models_body, media_type="application/json"
    )


def routes() -> list[Route]:
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready_probe, methods=["GET"]),
    ]
