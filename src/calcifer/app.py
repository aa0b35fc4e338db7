"""The composition root: the only module that imports every layer. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from starlette.datastructures import State
from starlette.responses import Response

from calcifer.assembly.providers import Assembly, assemble
from calcifer.cache.memory import MemoryResponseCache
from calcifer.config.settings import Settings
from calcifer.console.routes import console_routes
from calcifer.console.web import Console
from calcifer.domain.cache import ResponseCache
from calcifer.domain.cooldowns import CooldownStore
from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import GatewayError
from calcifer.domain.gateway import GatewayService
from calcifer.domain.keys import KeyStore
from calcifer.domain.ledger import SpendLedger, SpendRecord, outcome_of
from calcifer.domain.levels import CustomerPolicy, baseline_filter
from calcifer.domain.limits import BaselineSource, Limiter, window_bounds
from calcifer.domain.ports import Clock, Lifecycle, Provider, Reachable, ResponseStore
from calcifer.domain.pricing import PricingRegistry
from calcifer.domain.requests import RequestLog
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.spending import SpendControl
from calcifer.http.admin import admin_routes
from calcifer.http.admin_levels import level_routes
from calcifer.http.admin_models import admin_model_routes
from calcifer.http.admin_tags import tag_routes
from calcifer.http.asgi import GatewayApp, HeaderLimits, Route
from calcifer.http.auth import Authenticator
from calcifer.http.cors import Cors
from calcifer.http.errors import error_response
from calcifer.http.health import Readiness
from calcifer.http.messages import count_tokens, messages
from calcifer.http.messages import error_response as anthropic_error_response
from calcifer.http.middleware import RequestFacts
from calcifer.http.request_log import request_log_routes
from calcifer.http.responses import response_routes
from calcifer.http.routes import anthropic_models_body, models_body, routes
from calcifer.http.spend import spend
from calcifer.limits.cooldowns import MemoryCooldownStore
from calcifer.limits.memory import MemoryLimiter
from calcifer.observability.gauges import Sources, StateGauges
from calcifer.observability.logging import access_line, configure_logging, flush_logs
from calcifer.observability.metrics import GatewayMetrics
from calcifer.observability.otel_env import otel_settings
from calcifer.observability.scrape import MetricsServer, metrics_endpoint
from calcifer.observability.tracing import Tracing
from calcifer.providers.echo import ECHO_MODEL, ECHO_PRICING, EchoProvider
from calcifer.runtime.draining import Drain
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import migrate_in_child, open_database
from calcifer.storage.directory import SqlDirectory
from calcifer.storage.journal import LedgerJournal
from calcifer.storage.keys import SqlKeyStore
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.requests import SqlRequestLog
from calcifer.storage.responses import SqlResponseStore
from calcifer.storage.sessions import SqlSessionStore
from calcifer.tokenizers.tiktoken import TiktokenCounter

_log = logging.getLogger("calcifer")
_MODEL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses")


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def create_app(
    settings: Settings,
    *,
    providers: Sequence[Provider] | None = None,
    pricing: PricingRegistry | None = None,
    clock: Clock | None = None,
    ledger: SpendLedger | None = None,
    keys: KeyStore | None = None,
    limiter: Limiter | None = None,
    responses: ResponseStore | None = None,
) -> GatewayApp:
    """Build the gateway from settings. Tests pass their own providers, prices, clock and stores;
    the ledger, key store and Responses store are otherwise opened at start-up from
    `CALCIFER_DATABASE_URL` (with a ledger passed in, Responses are kept only in `responses`)."""
    if providers is None:
        assembly = assemble(settings)
    else:
        prices = pricing or PricingRegistry(version="test")
        prices.register(ECHO_MODEL, ECHO_PRICING)
        policy = RetryPolicy(max_retries=settings.openai.max_retries)
        assembly = Assembly(
            ProviderRegistry([EchoProvider(), *providers]), prices, {p.name: policy for p in providers}
        )
    registry, pricing = assembly.registry, assembly.pricing
    clock = clock or SystemClock()
    calculator = CostCalculator(pricing)
    cooldowns, response_cache = _routing_stores(settings, assembly)
    counter = TiktokenCounter()
    otel = otel_settings(settings.env or {})
    spec = assembly.observability
    tracing = (
        None
        if otel is None
        else Tracing.exporting(otel, propagate=spec.propagate, no_propagate=spec.no_propagate)
    )
    gateway = GatewayService(
        registry,
        calculator,
        clock,
        policies=assembly.policies,
        counter=counter,
        routing=assembly.routing,
        cooldowns=cooldowns,
        cache=response_cache,
        max_output=assembly.max_output.get,
        observer=tracing,
    )
    state = State()

    async def baseline(budget_key: str, window: str) -> Decimal:
        """What a key (or a team, user, member, customer, tag) already spent in a budget window, from
        the ledger's rollups (after a restart)."""
        since, until = window_bounds(window)
        report = await state.ledger.query("key", since, until, where=baseline_filter(budget_key))
        return report.total.cost or Decimal(0)

    if limiter is None:
        limiter = (
            _redis_limiter(settings.redis_url, baseline)
            if settings.redis_url
            else MemoryLimiter(baseline=baseline)
        )
    authenticator = Authenticator(settings.master_key, keys)
    drain = Drain(settings.shutdown_delay)
    metrics = GatewayMetrics(assembly.observability.metric_labels) if settings.metrics else None
    gauges = StateGauges(metrics.registry) if metrics is not None else None
    if gauges is not None:
        for store in (limiter, cooldowns, response_cache):
            if hasattr(store, "on_command"):
                store.on_command = gauges.redis

    async def refresh() -> None:
        if gauges is not None:
            routes = gateway.routing.routes.values()
            await gauges.refresh(Sources(getattr(state, "keys", None), limiter, cooldowns, routes))

    metrics_server = None
    if metrics is not None and settings.metrics_port is not None:
        metrics_server = MetricsServer(
            settings.host, settings.metrics_port, metrics.registry, settings.metrics_token, refresh
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
        opened: list[Lifecycle] = []
        database = None
        try:
            if ledger is None:
                # CALCIFER_MIGRATE=off: `calcifer migrate` is a deployment step; refuse an older schema.
                await migrate_in_child(
                    settings.database_url, settings.database_schema, check=not settings.migrate
                )
                database = await open_database(
                    settings.database_url, schema=settings.database_schema, migrate=False
                )
                journal = settings.ledger_journal
                state.ledger = SqlLedger(
                    database, journal=LedgerJournal.open(Path(journal)) if journal else None
                )
                state.request_log = SqlRequestLog(database)
                state.console.attach(SqlSessionStore(database))
                state.keys = keys or SqlKeyStore(database)
                state.responses = responses or SqlResponseStore(database)
                state.directory = state.spend.directory = SqlDirectory(database)
                state.audit = SqlAuditLog(database)
            else:
                state.ledger = ledger
                state.request_log = ledger if isinstance(ledger, RequestLog) else None
                state.keys = keys
                state.responses = responses
            authenticator.attach(state.keys)
            if gauges is not None and isinstance(state.ledger, SqlLedger):
                state.ledger.on_batch = gauges.ledger_batch
            resources = (state.ledger, limiter, cooldowns, response_cache, *registry.providers.values())
            for resource in (*resources, metrics_server):
                if isinstance(resource, Lifecycle):
                    await resource.start()
                    opened.append(resource)
            gc.collect()
            gc.freeze()  # what start-up built lives as long as the process: keep it out of every collection
            # A young generation large enough that an in-flight request's objects are mostly freed
            # before a collection promotes them (1000 connections: 0.50 -> 0.44 ms CPU per request).
            gc.set_threshold(50_000, 20, 100)
            database_check = database if database is not None else state.ledger
            state.readiness = Readiness(
                {
                    "database": database_check if isinstance(database_check, Reachable) else None,
                    "redis": cooldowns if isinstance(cooldowns, Reachable) else None,
                }
            )
            # Under `calcifer serve`, SIGTERM fails readiness at once and reaches the server after the
            # pause (runtime/draining.py); the server then stops accepting and waits for what is in
            # flight, and this lifespan's exit drains the ledger and the log last.
            drain.install(asyncio.get_running_loop())
            state.ready = True
            yield
        finally:
            state.ready = False
            drain.uninstall()
            for resource in reversed(opened):
                await resource.aclose()
            if database is not None:
                await database.aclose()
            if tracing is not None:
                await tracing.aclose()
            flush_logs()

    def record(facts: RequestFacts) -> None:
        if getattr(state, "ledger", None) is None:
            return
        if facts.model is None:
            # Refused before its body was read (no key, an unknown key): counted under no model.
            if facts.refusal != "auth" or facts.method != "POST" or not facts.path.startswith(_MODEL_PATHS):
                return
            facts.model = ""
        usage, attempts = facts.usage, facts.outcome
        head = facts.head_sent if facts.stream else 0.0  # a stream's head goes out with its first event
        cost = facts.cost
        if cost is None and usage is None and facts.status >= 400:
            cost = Decimal(0)  # refused or failed before anything was delivered: nothing was billed
        state.ledger.record(
            SpendRecord(
                time=datetime.now(UTC),
                request_id=facts.request_id,
                key_id=facts.key_id,
                user=facts.user,
                team=facts.team,
                model=facts.model,
                provider=facts.provider,
                status=facts.status,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                cached_tokens=usage.cached_tokens if usage else 0,
                cache_write_tokens=usage.cache_write_tokens if usage else 0,
                reasoning_tokens=usage.reasoning_tokens if usage else 0,
                cost=cost,
                price_version=pricing.version,
                latency_ms=round(facts.latency_ms),
                streamed=facts.stream,
                cut_short=facts.cut_short,
                estimated=bool(usage and usage.estimated),
                cache_hit=facts.cache_hit,
                cost_saved=facts.cost_saved,
                customer=facts.customer,
                tags=facts.tags,
                outcome=outcome_of(facts.status, facts.refusal, usage is not None),
                attempts=attempts.attempts if attempts is not None else 0,
                deployments=attempts.deployments if attempts is not None else "",
                ttfb_ms=round((head - facts.started) * 1000) if head else None,
            )
        )

    def log(facts: RequestFacts) -> None:
        access_line(facts.log_line())

    app = GatewayApp(
        [
            *routes(),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            *response_routes(),
            Route("/v1/spend", spend, methods=["GET"]),
            *admin_routes(),
            *level_routes(),
            *tag_routes(),
            *request_log_routes(),
            *admin_model_routes(),
            *(
                [Route("/metrics", metrics_endpoint)]
                if metrics is not None and metrics_server is None
                else []
            ),
            *console_routes(),
        ],
        state=state,
        lifespan=lifespan,
        authenticator=authenticator,
        cors=Cors(
            origins=settings.cors_origins,
            methods=settings.cors_methods,
            headers=settings.cors_headers,
            expose=(
                "x-request-id",
                "x-calcifer-cost",
                "x-calcifer-provider",
                "x-calcifer-model",
                "x-calcifer-attempts",
                "x-calcifer-cache",
            ),
        ),
        finishers=(*(() if metrics is None else (metrics.finish,)), log),
        recorders=(record,),
        render_error=_render_error,
        in_flight=None if metrics is None else metrics.tally,
        tracer=tracing,
        header_limits=HeaderLimits(settings.max_headers, settings.max_header_bytes),
    )
    state.settings = settings
    state.gateway = gateway
    state.pricing = pricing
    state.clock = clock
    state.authenticator = authenticator
    state.spend = SpendControl(
        limiter,
        calculator,
        clock,
        max_output=assembly.max_output.get,
        customers=CustomerPolicy(settings.customer_budget, settings.customer_budget_period),  # type: ignore[arg-type]
    )
    state.models_body = models_body(registry, pricing=pricing)
    state.anthropic_models_body = anthropic_models_body(registry)
    state.token_counter = counter
    state.drain = drain
    state.metrics = metrics
    state.tracing = tracing
    state.metrics_refresh = refresh
    state.console = Console(trusted_proxies=settings.trusted_proxies)
    state.cooldowns = cooldowns
    state.ready = False
    return app


def _redis_limiter(url: str, baseline: BaselineSource) -> Limiter:
    from calcifer.limits.redis import RedisLimiter  # imported only when Redis is configured (memory)

    return RedisLimiter(url, baseline=baseline)


def _routing_stores(settings: Settings, assembly: Assembly) -> tuple[CooldownStore, ResponseCache]:
    """Cooldowns and the response cache: shared through Redis when `CALCIFER_REDIS_URL` is set (the
    cache unless the config file says `cache: {backend: memory}`), else in this process."""
    backend = assembly.cache.cache_backend or ("redis" if settings.redis_url else "memory")
    if backend == "redis" and not settings.redis_url:
        raise ValueError("the config file sets cache.backend: redis, but CALCIFER_REDIS_URL is not set")
    cooldowns: CooldownStore = MemoryCooldownStore()
    cache: ResponseCache = MemoryResponseCache(assembly.cache.cache_max_entries)
    if settings.redis_url:  # imported only when Redis is configured (memory)
        from calcifer.limits.redis_cooldowns import RedisCooldownStore

        cooldowns = RedisCooldownStore(settings.redis_url)
        if backend == "redis":
            from calcifer.cache.redis import RedisResponseCache

            cache = RedisResponseCache(settings.redis_url)
    return cooldowns, cache


def _render_error(path: str, error: GatewayError) -> Response:
    """An error in the shape of the route's API: Anthropic's on `/v1/messages`, OpenAI's elsewhere."""
    return anthropic_error_response(error) if path.startswith("/v1/messages") else error_response(error)


def app_from_env() -> GatewayApp:
    """The uvicorn factory: settings from the process environment."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    return create_app(settings)
