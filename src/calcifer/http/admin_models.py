"""`GET /admin/models`: every routable model with its deployments, fallbacks, prices per token class
(where they came from, unpriced flagged) and the deployments cooling down now. Master key only."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.cooldowns import CooldownStore
from calcifer.domain.deployments import Deployment, ModelGroup
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingRegistry
from calcifer.http.asgi import Route
from calcifer.http.routes import pricing_json


def _deployment(d: Deployment, cooling: dict[str, float], now: float) -> dict[str, object]:
    until = cooling.get(d.key)
    return {
        "provider": d.provider.name,
        "model": d.model,
        "weight": d.weight,
        "max_in_flight": d.max_in_flight,
        "rpm": d.rpm,
        "in_flight": d.stats.in_flight,
        "cooling_down": until is not None,
        "cooldown_seconds_left": None if until is None else max(0, round(until - now)),
    }


def _names(groups: tuple[ModelGroup, ...]) -> list[str]:
    return [group.name for group in groups]


async def list_models(request: Request) -> Response:
    state = request.app.state
    gateway: GatewayService = state.gateway
    pricing: PricingRegistry = state.pricing
    cooldowns: CooldownStore | None = getattr(state, "cooldowns", None)
    routes = gateway.routing.routes
    keys = {d.key for route in routes.values() for g in route.chain(False) for d in g.deployments}
    cooling = dict(await cooldowns.cooling(keys)) if cooldowns is not None and keys else {}
    now = state.clock.now()
    at = datetime.fromtimestamp(now, UTC)
    data: list[dict[str, object]] = []
    for model, provider in sorted(gateway.registry.models(), key=lambda item: item[0]):
        target = gateway.registry.resolve(model)[1]
        price, source = pricing.served_as(provider.name, target, at)  # what the serving vendor bills
        entry: dict[str, object] = {
            "id": model,
            "owned_by": provider.name,
            "priced": price is not None,
            "pricing": None if price is None else pricing_json(price, pricing.version),
            "price_source": source,
        }
        route = routes.get(model)
        if route is None:
            entry.update(strategy=None, fallbacks=[], context_fallbacks=[])
            entry["deployments"] = [{"provider": provider.name, "model": target, "cooling_down": False}]
        else:
            entry.update(
                strategy=route.group.strategy,
                fallbacks=_names(route.fallbacks),
                context_fallbacks=_names(route.context_fallbacks),
                deployments=[_deployment(d, cooling, now) for d in route.group.deployments],
            )
        data.append(entry)
    body = {"object": "list", "catalogue": pricing.version, "data": data}
    return Response(orjson.dumps(body), media_type="application/json")


def admin_model_routes() -> list[Route]:
    return [Route("/admin/models", list_models)]
