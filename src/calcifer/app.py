"""The composition root: the only module that imports every layer. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from calcifer.catalogue import catalogue_version, openai_chat_entries
from calcifer.config import Settings
from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import GatewayError
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import Clock, Lifecycle, Provider
from calcifer.domain.pricing import PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.http.errors import MethodNotAllowed, RouteNotFound, error_response, internal_error_response
from calcifer.http.middleware import RequestContext
from calcifer.http.routes import models_body, routes
from calcifer.observability.logging import configure_logging
from calcifer.providers.echo import ECHO_MODEL, ECHO_PRICING, EchoProvider
from calcifer.providers.openai import OpenAIProvider

_log = logging.getLogger("calcifer")


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


def default_providers(settings: Settings, pricing: PricingRegistry) -> list[Provider]:
    """The built-in providers (besides echo), registering their catalogue prices."""
    openai_models = openai_chat_entries()
    for entry in openai_models.values():
        for since, config in entry.history:
            pricing.register(entry.model, config, since=since)
    openai = OpenAIProvider(
        models=frozenset(openai_models),
        api_key=settings.openai.api_key,
        base_url=settings.openai.base_url,
        timeout=settings.openai.timeout,
    )
    return [openai]


def create_app(
    settings: Settings,
    *,
    providers: Sequence[Provider] | None = None,
    pricing: PricingRegistry | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """Build the gateway from settings. Tests pass their own providers, prices and clock."""
    pricing = pricing or PricingRegistry(version=catalogue_version())
    pricing.register(ECHO_MODEL, ECHO_PRICING)
    chosen = list(providers) if providers is not None else default_providers(settings, pricing)
    registry = ProviderRegistry([EchoProvider(), *chosen])
    policies = {"openai": RetryPolicy(max_retries=settings.openai.max_retries)}
    gateway = GatewayService(registry, CostCalculator(pricing), clock or SystemClock(), policies=policies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Lifecycle] = []
        try:
            for provider in registry.providers.values():
                if isinstance(provider, Lifecycle):
                    await provider.start()
                    started.append(provider)
            app.state.ready = True
            yield
        finally:
            app.state.ready = False
            for resource in reversed(started):
                await resource.aclose()

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(RequestContext),
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=list(settings.cors_methods),
                allow_headers=list(settings.cors_headers),
                expose_headers=["x-request-id", "x-calcifer-cost", "x-calcifer-provider", "x-calcifer-model"],
            ),
        ],
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.pricing = pricing
    app.state.models_body = models_body(registry)
    app.state.ready = False
    return app


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(
            MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
        )
    if exc.status_code == 404:
        return error_response(RouteNotFound(f"Unknown path: {request.method} {request.url.path}."))
    error = GatewayError(str(exc.detail))
    error.http_status = exc.status_code  # type: ignore[attr-defined]
    return error_response(error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return internal_error_response()


def app_from_env() -> Starlette:
    """The uvicorn factory: settings from the process environment."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    return create_app(settings)
