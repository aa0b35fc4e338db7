"""The route table, and the small endpoints: models, health and readiness."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calcifer.domain.ports import Credentialed
from calcifer.domain.routing import ProviderRegistry
from calcifer.http.chat import chat_completions, completions


def models_body(registry: ProviderRegistry, created: int | None = None) -> bytes:
    """OpenAI's model list, built once at start-up: every routable model, owned by its provider."""
    stamp = int(time.time()) if created is None else created
    data = [
        {"id": model, "object": "model", "created": stamp, "owned_by": provider.name}
        for model, provider in sorted(registry.models(), key=lambda item: item[0])
    ]
    return orjson.dumps({"object": "list", "data": data})


async def list_models(request: Request) -> Response:
    return Response(request.app.state.models_body, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def ready(request: Request) -> Response:
    state = request.app.state
    providers = {
        name: ("configured" if not isinstance(p, Credentialed) or p.configured else "not configured")
        for name, p in state.gateway.registry.providers.items()
    }
    is_ready = bool(getattr(state, "ready", False))
    body = {"status": "ready" if is_ready else "not ready", "providers": providers}
    return Response(orjson.dumps(body), status_code=200 if is_ready else 503, media_type="application/json")


def routes() -> list[Route]:
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
