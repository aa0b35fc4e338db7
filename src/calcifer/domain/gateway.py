"""GatewayService: route → call (with the retry policy) → price. The one orchestration point."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import ProviderError, ProviderNotConfigured
from calcifer.domain.ports import Clock, Credentialed, Provider
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.tokens import TokenCounter, answer_text, collect_chunk, estimate_usage
from calcifer.domain.types import ChatRequest, ChatResponse, Priced, StreamChunk, StreamOutcome, Usage


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
    ) -> None:
        self.registry = registry
        self.calculator = calculator
        self._clock = clock
        self._policies = dict(policies or {})
        self._default_policy = default_policy or RetryPolicy()
        self._rand = rand
        self._counter = counter  # estimates usage a provider did not report (None: no estimate)

    def route(self, request: ChatRequest) -> tuple[Provider, ChatRequest]:
        """The provider for the request, and the request as that provider must see it."""
        provider, model = self.registry.resolve(request.model)
        if isinstance(provider, Credentialed) and not provider.configured:
            raise ProviderNotConfigured(provider.name, provider.credential_setting)
        if model != request.model:
            request = replace(request, model=model)
        return provider, request

    def price(self, model: str, response_usage: ChatResponse | StreamChunk) -> Priced:
        provider = response_usage.provider if isinstance(response_usage, ChatResponse) else ""
        return self._price_usage(model, response_usage.usage, provider)

    def _price_usage(self, model: str, usage: Usage | None, provider: str) -> Priced:
        at = datetime.fromtimestamp(self._clock.now(), UTC)
        return Priced(usage, self.calculator.cost(model, usage, at), provider, model)

    async def complete(self, request: ChatRequest) -> tuple[ChatResponse, Priced]:
        provider, request = self.route(request)
        policy = self._policies.get(provider.name, self._default_policy)
        retry = 0
        while True:
            try:
                response = await provider.complete(request)
                break
            except ProviderError as error:
                retry += 1
                await self._wait_or_raise(policy, retry, error)
        if not response.provider:
            response = replace(response, provider=provider.name)
        if response.usage is None and self._counter is not None:
            usage = estimate_usage(self._counter, request, answer_text(response.body))
            return response, self._price_usage(request.model, usage, response.provider)
        return response, self.price(request.model, response)

    async def stream(self, request: ChatRequest, outcome: StreamOutcome) -> AsyncIterator[StreamChunk]:
        """Open the stream (retrying until its first chunk arrives), then relay and price it.

        Errors after the first chunk are not retried: they end the stream and are raised to the caller.
        """
        provider, request = self.route(request)
        outcome.provider = provider.name
        policy = self._policies.get(provider.name, self._default_policy)
        retry = 0
        while True:
            chunks = provider.stream(request)
            try:
                first = await anext(chunks)
                break
            except StopAsyncIteration:
                self._estimate_stream(request, outcome, [])
                return
            except ProviderError as error:
                await _aclose(chunks)
                retry += 1
                await self._wait_or_raise(policy, retry, error)
        # The generated text, kept only to estimate the usage if the stream brings none.
        generated: list[str] | None = [] if self._counter is not None else None
        try:
            chunk: StreamChunk | None = first
            while chunk is not None:
                outcome.chunks += 1
                if chunk.usage is not None:
                    priced = self.price(request.model, chunk)
                    outcome.usage, outcome.cost = priced.usage, priced.cost
                elif generated is not None:
                    collect_chunk(chunk.data, generated)
                yield chunk
                chunk = await anext(chunks, None)
        finally:
            if generated is not None:
                self._estimate_stream(request, outcome, generated)
            await _aclose(chunks)

    def _estimate_stream(self, request: ChatRequest, outcome: StreamOutcome, generated: list[str]) -> None:
        """A stream over (whole, failed or cut short) without usage: estimate it from what was sent."""
        if self._counter is None or outcome.usage is not None:
            return
        usage = estimate_usage(self._counter, request, "".join(generated))
        priced = self._price_usage(request.model, usage, outcome.provider)
        outcome.usage, outcome.cost = priced.usage, priced.cost

    async def _wait_or_raise(self, policy: RetryPolicy, retry: int, error: ProviderError) -> None:
        delay = policy.delay(retry, error, self._rand())
        if delay is None:
            raise error
        await self._clock.sleep(delay)


async def _aclose(chunks: AsyncIterator[StreamChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
