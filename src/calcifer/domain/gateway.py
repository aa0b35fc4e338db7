"""GatewayService: cache → route → attempts (deployments, fallbacks, retries) → price. The one
orchestration point; the failover policy itself is in `attempts`, the cache's rules in `cache`."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from calcifer.domain.attempts import Attempts, RoutingConfig
from calcifer.domain.bounded import LruTable
from calcifer.domain.cache import (
    CachedAnswer,
    CacheDirective,
    CachePlan,
    ResponseCache,
    copy_object,
    plan,
)
from calcifer.domain.cooldowns import CooldownStore
from calcifer.domain.cost import CostCalculator
from calcifer.domain.deployments import Deployment, Route, single
from calcifer.domain.errors import ApiNotOffered, ProviderNotConfigured
from calcifer.domain.ports import AttemptObserver, Clock, Provider, TokenCounter, speaks
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.tokens import answer_text, collect_chunk, estimate_usage
from calcifer.domain.types import (
    MAX_DEPLOYMENTS,
    ChatRequest,
    ChatResponse,
    JSONObject,
    Priced,
    StreamChunk,
    StreamOutcome,
    Usage,
)

ROUTES_KEPT = 4096  # model names whose undeclared route is kept made


class GatewayService:
    def __init__(
        self,
        registry: ProviderRegistry,
        calculator: CostCalculator,
        clock: Clock,
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
        default_policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
        counter: TokenCounter | None = None,
        routing: RoutingConfig | None = None,
        cooldowns: CooldownStore | None = None,
        cache: ResponseCache | None = None,
        max_output: Callable[[str], int | None] = lambda _: None,
        observer: AttemptObserver | None = None,
    ) -> None:
        self.registry = registry
        self.calculator = calculator
        self._clock = clock
        self._counter = counter  # estimates usage a provider did not report (None: no estimate)
        self.routing = routing or RoutingConfig()
        self._routes: dict[str, Route] = dict(self.routing.routes)
        # Routes made per model name on first use: a bounded table, as clients choose the names.
        self._single_routes: LruTable[str, Route] = LruTable(ROUTES_KEPT)
        self._cache = cache
        self._max_output = max_output  # a model's most output tokens, when known
        self._observer = observer  # None (tracing off): no call at all
        self._attempts = Attempts(
            self.routing, clock, cooldowns, dict(policies or {}), default_policy or RetryPolicy(), rand
        )

    def first_target(self, model: str) -> tuple[Provider, str]:
        """The provider the route of `model` tries first (its first deployment as declared), and the
        model name that provider is sent."""
        target = self._route(model).group.deployments[0]
        return target.provider, target.model

    def route(self, request: ChatRequest) -> tuple[Provider, ChatRequest]:
        """The (first) provider for the request, and the request as that provider must see it."""
        target = self._route(request.model).group.deployments[0]
        keyed = target.credentialed
        if keyed is not None and not keyed.configured:
            raise ProviderNotConfigured(target.provider.name, keyed.credential_setting)
        return target.provider, _for(request, target)

    def _route(self, model: str) -> Route:
        """The declared route of `model`, or its one provider's (kept for the names used most lately)."""
        route = self._routes.get(model) or self._single_routes.get(model)
        if route is None:
            provider, target = self.registry.resolve(model)
            route = single(provider, target, model, self._max_output(target))
            self._single_routes.put(model, route)
        return route

    def _price_usage(self, model: str, usage: Usage | None, provider: str, attempts: int = 1) -> Priced:
        at = datetime.fromtimestamp(self._clock.now(), UTC)
        return Priced(usage, self.calculator.cost(model, usage, at, provider), provider, model, attempts)

    def _plan(self, request: ChatRequest, directive: CacheDirective | None) -> CachePlan | None:
        if self._cache is None:
            return None
        rules = self.routing.cache_rules
        if directive is None and not rules:
            return None
        rule = rules.get(request.model, self.routing.cache_default)
        return plan(rule, directive, request.model, request.body, request.stream, request.native)

    async def complete(
        self,
        request: ChatRequest,
        *,
        cache: CacheDirective | None = None,
        outcome: StreamOutcome | None = None,
    ) -> tuple[ChatResponse, Priced]:
        """Answer a whole request. `outcome`, when given, is told each attempt as it starts (so a
        caller knows the provider and attempts even when every attempt fails)."""
        cached = self._plan(request, cache)
        if cached is not None and cached.read:
            hit = await self._lookup(cached)
            if hit is not None and hit.body is not None:
                if outcome is not None:
                    _note_hit(outcome, hit)
                priced = Priced(hit.usage, Decimal(0), hit.provider, hit.model, 0, True, hit.cost)
                return ChatResponse(copy_object(hit.body), hit.usage, hit.provider, hit.api), priced
        progress = outcome if outcome is not None else StreamOutcome()

        observer = self._observer

        async def call(target: Deployment) -> ChatResponse:
            started = time.perf_counter()
            try:
                return await target.provider.complete(_for(request, target))
            except BaseException as error:
                if observer is not None:
                    observer.failed(progress, error)
                raise
            finally:
                progress.upstream_seconds += time.perf_counter() - started

        noting = _noting(progress, observer, request)
        response, target = await self._attempts.run(self._route(request.model), call, noting)
        target.stats.in_flight -= 1
        sent = _for(request, target)
        if not response.provider:
            response = replace(response, provider=target.provider.name)
        usage = response.usage
        if usage is None and self._counter is not None:
            usage = estimate_usage(self._counter, sent, answer_text(response.body))
        priced = self._price_usage(sent.model, usage, response.provider, progress.attempts)
        if observer is not None:
            progress.usage, progress.cost = priced.usage, priced.cost
            observer.answered(progress, response.body)
        if cached is not None and self._cache is not None:
            body = copy_object(response.body)
            answer = CachedAnswer(
                sent.model, response.provider, priced.usage, priced.cost, body, api=response.api
            )
            await self._cache.put(cached.key, answer, cached.ttl)
        return response, priced

    async def stream(
        self, request: ChatRequest, outcome: StreamOutcome, *, cache: CacheDirective | None = None
    ) -> AsyncIterator[StreamChunk]:
        """Open the stream (failing over and retrying until a first chunk arrives), then relay and price it.

        Errors after the first chunk are not retried: they end the stream and are raised to the caller.
        """
        cached = self._plan(request, cache)
        if cached is not None and cached.read:
            hit = await self._lookup(cached)
            if hit is not None and hit.chunks:
                _note_hit(outcome, hit)
                for data, usage in hit.chunks:
                    outcome.chunks += 1
                    yield StreamChunk(copy_object(data), usage)
                return

        observer = self._observer

        async def call(target: Deployment) -> tuple[AsyncIterator[StreamChunk], StreamChunk | None]:
            started = time.perf_counter()
            chunks = target.provider.stream(_for(request, target))
            try:
                return chunks, await anext(chunks)
            except StopAsyncIteration:
                return chunks, None
            except BaseException as error:
                if observer is not None:
                    observer.failed(outcome, error)
                await _aclose(chunks)
                raise
            finally:
                outcome.first_chunk_at = now = time.perf_counter()
                outcome.upstream_seconds += now - started

        noting = _noting(outcome, observer, request)
        (chunks, first), target = await self._attempts.run(self._route(request.model), call, noting)
        sent = _for(request, target)
        outcome.api = sent.native.api if sent.native is not None else ""
        if first is None:
            target.stats.in_flight -= 1
            self._estimate_stream(sent, outcome, [])
            if observer is not None:
                observer.answered(outcome, None)
            return
        # The generated text, kept only to estimate the usage if the stream brings none: chunks are read
        # for it in batches, after the fact, so a stream that reports its usage (nearly all) is never read.
        generated: list[str] | None = [] if self._counter is not None else None
        unread: list[JSONObject] = []
        kept: list[tuple[dict[str, object], Usage | None]] | None = [] if cached is not None else None
        waited = 0.0
        arrived = outcome.first_chunk_at
        failure: BaseException | None = None
        try:
            chunk: StreamChunk | None = first
            while chunk is not None:
                outcome.chunks += 1
                if chunk.usage is not None:
                    priced = self._price_usage(sent.model, chunk.usage, target.provider.name)
                    outcome.usage, outcome.cost = priced.usage, priced.cost
                elif generated is not None and outcome.usage is None:
                    unread.append(chunk.data)
                    if len(unread) >= _UNREAD:
                        _collect(unread, generated)
                if kept is not None:
                    kept.append((copy_object(chunk.data), chunk.usage))
                yield chunk
                asked = time.perf_counter()
                chunk = await anext(chunks, None)
                arrived = time.perf_counter()
                waited += arrived - asked
            if kept is not None and cached is not None and self._cache is not None:
                answer = CachedAnswer(
                    sent.model, outcome.provider, outcome.usage, outcome.cost, None, tuple(kept), outcome.api
                )
                await self._cache.put(cached.key, answer, cached.ttl)
        except BaseException as error:
            failure = error
            raise
        finally:
            outcome.upstream_seconds += waited
            outcome.last_chunk_at = arrived
            target.stats.in_flight -= 1
            if generated is not None and outcome.usage is None:
                _collect(unread, generated)
                self._estimate_stream(sent, outcome, generated)
            if observer is not None:
                observer.answered(outcome, first.data, failure)
            await _aclose(chunks)

    async def _lookup(self, cached: CachePlan) -> CachedAnswer | None:
        assert self._cache is not None
        return await self._cache.get(cached.key)

    def _estimate_stream(self, request: ChatRequest, outcome: StreamOutcome, generated: list[str]) -> None:
        """A stream over (whole, failed or cut short) without usage: estimate it from what was sent."""
        if self._counter is None or outcome.usage is not None:
            return
        usage = estimate_usage(self._counter, request, "".join(generated))
        priced = self._price_usage(request.model, usage, outcome.provider)
        outcome.usage, outcome.cost = priced.usage, priced.cost


_UNREAD = 64  # chunks held before their text is collected (bounds what a long stream keeps)


def _collect(unread: list[JSONObject], generated: list[str]) -> None:
    for data in unread:
        collect_chunk(data, generated)
    unread.clear()


def _for(request: ChatRequest, target: Deployment) -> ChatRequest:
    """The request as `target` must see it: its model name, and the client's native call only when the
    target's provider speaks that API (every other provider gets the chat-completions translation).

    A translated request's output limit was set for the client's own model (Claude Code asks 32000 of
    any model): it is lowered to the target model's maximum, when known, so the upstream accepts it. A
    request sent as the client sent it is not changed (the upstream judges it)."""
    native = request.native
    if native is not None and not speaks(target.provider, native.api, target.model):
        if not native.translatable:
            raise ApiNotOffered(
                f"'{target.model}' is served by {target.provider.name!r}, which does not offer this API."
            )
        request = _capped(replace(request, native=None), target.max_output)
    return request if target.model == request.model else replace(request, model=target.model)


_LIMITS = ("max_completion_tokens", "max_tokens")


def _capped(request: ChatRequest, most: int | None) -> ChatRequest:
    """`request` with its output limits no higher than `most` (None: unknown, unchanged)."""
    if most is None:
        return request
    over: dict[str, object] = {}
    for name in _LIMITS:
        value = request.body.get(name)
        if isinstance(value, int) and value > most:
            over[name] = most
    if not over:
        return request
    limit = request.max_output_tokens
    return replace(
        request, body={**request.body, **over}, max_output_tokens=most if limit is None else min(limit, most)
    )


def _noting(
    outcome: StreamOutcome, observer: AttemptObserver | None, request: ChatRequest
) -> Callable[[Deployment, int], None]:
    def note(target: Deployment, attempt: int) -> None:
        if attempt == 1:
            outcome.deployments = target.key
        elif outcome.provider == target.provider.name and outcome.model == target.model:
            outcome.retries += 1
        else:
            outcome.failovers += 1
            if outcome.failovers < MAX_DEPLOYMENTS:
                outcome.deployments += "," + target.key
        outcome.provider, outcome.model, outcome.attempts = target.provider.name, target.model, attempt
        if observer is not None:
            observer.attempt(outcome, target.provider.name, target.model, target.key, attempt, request)

    return note


def _note_hit(outcome: StreamOutcome, hit: CachedAnswer) -> None:
    outcome.provider, outcome.model, outcome.attempts = hit.provider, hit.model, 0
    outcome.usage, outcome.cost = hit.usage, Decimal(0)
    outcome.cache_hit, outcome.cost_saved, outcome.api = True, hit.cost, hit.api


async def _aclose(chunks: AsyncIterator[StreamChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
