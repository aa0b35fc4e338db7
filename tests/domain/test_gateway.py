"""GatewayService: route → call with the retry policy → price, for whole answers and for streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import (
    ModelNotFound,
    ProviderNotConfigured,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import Provider
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, StreamChunk, StreamOutcome, Usage
from calcifer.providers.echo import ECHO_MODEL, ECHO_PRICING, EchoProvider
from tests.domain.doubles import (
    CredentialedProvider,
    FakeClock,
    ScriptedProvider,
    Step,
    StreamScript,
    chunk,
    response,
)

PRICE = PricingConfig.per_million("2.50", "10.00", cached_input="1.25")  # gpt-4o
USAGE = Usage(1_000_000, 1_000_000)
POLICY = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0, max_retry_after=20.0)


def _gateway(
    *providers: Provider,
    aliases: Mapping[str, str] | None = None,
    policies: Mapping[str, RetryPolicy] | None = None,
    clock: FakeClock | None = None,
) -> tuple[GatewayService, FakeClock]:
    pricing = PricingRegistry()
    for model in ("model-a", "model-b", "model-k"):
        pricing.register(model, PRICE)
    pricing.register(ECHO_MODEL, ECHO_PRICING)
    clock = clock or FakeClock()
    gateway = GatewayService(
        ProviderRegistry(providers, aliases),
        CostCalculator(pricing),
        clock,
        policies=policies,
        default_policy=POLICY,
        rand=lambda: 0.5,
    )
    return gateway, clock


def _request(model: str = "model-a", *, stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model, {"model": model, "messages": [{"role": "user", "content": "hi"}]}, stream=stream
    )


async def _collect(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in chunks]


# --- complete -----------------------------------------------------------------------------------------


async def test_complete_returns_the_answer_priced_and_named() -> None:
    answer = response("hello", USAGE)
    provider = ScriptedProvider("p", ["model-a"], steps=[answer])
    gateway, clock = _gateway(provider)
    request = _request()
    result, priced = await gateway.complete(request)
    assert result.body is answer.body
    assert result.provider == "p"
    assert priced.provider == "p"
    assert priced.model == "model-a"
    assert priced.usage == USAGE
    assert priced.cost == Decimal("12.50")
    assert provider.requests == [request]
    assert clock.sleeps == []


async def test_complete_keeps_a_provider_name_the_answer_already_has() -> None:
    provider = ScriptedProvider("p", ["model-a"], steps=[response(usage=USAGE, provider="p/eu")])
    gateway, _ = _gateway(provider)
    result, priced = await gateway.complete(_request())
    assert result.provider == priced.provider == "p/eu"


async def test_complete_without_usage_is_unpriced() -> None:
    gateway, _ = _gateway(ScriptedProvider("p", ["model-a"], steps=[response(usage=None)]))
    _, priced = await gateway.complete(_request())
    assert priced.usage is None
    assert priced.cost is None


async def test_complete_for_a_model_without_a_price_is_unpriced_not_free() -> None:
    provider = ScriptedProvider("p", ["unpriced-model"], steps=[response(usage=USAGE)])
    gateway, _ = _gateway(provider)
    _, priced = await gateway.complete(_request("unpriced-model"))
    assert priced.cost is None
    assert priced.usage == USAGE


async def test_complete_prices_at_the_clock_time() -> None:
    provider = ScriptedProvider("p", ["o3"], steps=[response(usage=Usage(1_000_000, 0))] * 2)
    gateway, clock = _gateway(provider)
    gateway.calculator.registry.register("o3", PricingConfig.per_million("10", "40"))
    since = datetime(2025, 6, 10, tzinfo=UTC)
    gateway.calculator.registry.register("o3", PricingConfig.per_million("2", "8"), since=since)
    clock.time = datetime(2025, 5, 1, tzinfo=UTC).timestamp()
    assert (await gateway.complete(_request("o3")))[1].cost == Decimal(10)
    clock.time = since.timestamp()
    assert (await gateway.complete(_request("o3")))[1].cost == Decimal(2)


async def test_unknown_model_raises_model_not_found() -> None:
    gateway, _ = _gateway(ScriptedProvider("p", ["model-a"]))
    with pytest.raises(ModelNotFound):
        await gateway.complete(_request("nope"))


async def test_unconfigured_credentialed_provider_is_refused_before_any_call() -> None:
    provider = CredentialedProvider("keyed", ["model-k"], configured=False, setting="KEYED_API_KEY")
    gateway, _ = _gateway(provider)
    with pytest.raises(ProviderNotConfigured, match="KEYED_API_KEY") as caught:
        await gateway.complete(_request("model-k"))
    assert caught.value.provider == "keyed"
    with pytest.raises(ProviderNotConfigured):
        await _collect(gateway.stream(_request("model-k", stream=True), StreamOutcome()))
    assert provider.requests == []


async def test_configured_credentialed_provider_is_called() -> None:
    provider = CredentialedProvider("keyed", ["model-k"], configured=True, steps=[response(usage=USAGE)])
    gateway, _ = _gateway(provider)
    _, priced = await gateway.complete(_request("model-k"))
    assert priced.cost == Decimal("12.50")


async def test_complete_retries_retryable_errors_then_succeeds() -> None:
    steps: list[Step] = [
        UpstreamUnavailable("503", status=503),
        UpstreamRateLimited("429", status=429, retry_after=2.0),
        UpstreamTimeout("timeout", status=504),
        response(usage=USAGE),
    ]
    provider = ScriptedProvider("p", ["model-a"], steps=steps)
    gateway, clock = _gateway(provider)
    _, priced = await gateway.complete(_request())
    assert priced.cost == Decimal("12.50")
    assert len(provider.requests) == 4
    # backoff 0.5 then (Retry-After) 2.0 then backoff 2.0, each backoff at rand 0.5 → ×0.75
    assert clock.sleeps == [0.375, 2.0, 1.5]


async def test_complete_gives_up_after_max_retries_with_the_last_error() -> None:
    errors = [UpstreamUnavailable(f"503 #{i}", status=503) for i in range(4)]
    provider = ScriptedProvider("p", ["model-a"], steps=[*errors, response(usage=USAGE)])
    gateway, clock = _gateway(provider)
    with pytest.raises(UpstreamUnavailable) as caught:
        await gateway.complete(_request())
    assert caught.value is errors[3]
    assert len(provider.requests) == 4  # one call plus max_retries
    assert len(clock.sleeps) == 3


async def test_complete_raises_a_non_retryable_error_at_once() -> None:
    rejected = UpstreamRejected("bad request", status=400)
    provider = ScriptedProvider("p", ["model-a"], steps=[rejected, response(usage=USAGE)])
    gateway, clock = _gateway(provider)
    with pytest.raises(UpstreamRejected) as caught:
        await gateway.complete(_request())
    assert caught.value is rejected
    assert len(provider.requests) == 1
    assert clock.sleeps == []


async def test_complete_does_not_wait_for_a_retry_after_above_the_cap() -> None:
    limited = UpstreamRateLimited("429", status=429, retry_after=3600.0)
    provider = ScriptedProvider("p", ["model-a"], steps=[limited, response(usage=USAGE)])
    gateway, clock = _gateway(provider)
    with pytest.raises(UpstreamRateLimited):
        await gateway.complete(_request())
    assert clock.sleeps == []


async def test_complete_does_not_retry_errors_that_are_not_provider_errors() -> None:
    provider = ScriptedProvider("p", ["model-a"], steps=[RuntimeError("bug"), response(usage=USAGE)])
    gateway, _ = _gateway(provider)
    with pytest.raises(RuntimeError):
        await gateway.complete(_request())
    assert len(provider.requests) == 1


async def test_policies_are_per_provider() -> None:
    strict = ScriptedProvider(
        "strict", ["model-a"], steps=[UpstreamUnavailable("503"), response(usage=USAGE)]
    )
    lenient = ScriptedProvider(
        "lenient", ["model-b"], steps=[UpstreamUnavailable("503"), response(usage=USAGE)]
    )
    gateway, clock = _gateway(strict, lenient, policies={"strict": RetryPolicy(max_retries=0)})
    with pytest.raises(UpstreamUnavailable):
        await gateway.complete(_request("model-a"))
    _, priced = await gateway.complete(_request("model-b"))
    assert priced.cost == Decimal("12.50")
    assert clock.sleeps == [0.375]  # only the lenient provider waited, with the default policy


async def test_default_policy_is_used_when_none_is_given() -> None:
    provider = ScriptedProvider("p", ["model-a"], steps=[UpstreamUnavailable("503")] * 5)
    pricing = PricingRegistry()
    clock = FakeClock()
    gateway = GatewayService(ProviderRegistry([provider]), CostCalculator(pricing), clock)
    with pytest.raises(UpstreamUnavailable):
        await gateway.complete(_request())
    assert len(provider.requests) == 1 + RetryPolicy().max_retries
    assert all(0.25 <= s < 2.0 for s in clock.sleeps)  # real jitter in [0.5, 1) × backoff


async def test_alias_rewrites_the_model_the_provider_sees_and_prices_the_target() -> None:
    provider = ScriptedProvider("p", ["model-a"], steps=[response(usage=USAGE)])
    gateway, _ = _gateway(provider, aliases={"fast": "model-a"})
    request = _request("fast")
    _, priced = await gateway.complete(request)
    assert provider.requests[0].model == "model-a"
    assert provider.requests[0].body is request.body  # only the routing changes
    assert priced.model == "model-a"
    assert priced.cost == Decimal("12.50")


def test_route_leaves_an_unaliased_request_as_it_is() -> None:
    provider = ScriptedProvider("p", ["model-a"])
    gateway, _ = _gateway(provider)
    request = _request()
    assert gateway.route(request) == (provider, request)
    assert gateway.route(request)[1] is request


# --- stream -------------------------------------------------------------------------------------------


async def test_stream_relays_chunks_and_prices_the_usage_chunk() -> None:
    script = [chunk("Hel"), chunk("lo"), chunk(usage=USAGE)]
    provider = ScriptedProvider("p", ["model-a"], streams=[script])
    gateway, clock = _gateway(provider)
    outcome = StreamOutcome()
    received = await _collect(gateway.stream(_request(stream=True), outcome))
    assert received == script
    assert outcome.provider == "p"
    assert outcome.chunks == 3
    assert outcome.usage == USAGE
    assert outcome.cost == Decimal("12.50")
    assert provider.closed == 1
    assert clock.sleeps == []


async def test_stream_without_a_usage_chunk_is_unpriced() -> None:
    provider = ScriptedProvider("p", ["model-a"], streams=[[chunk("a"), chunk("b")]])
    gateway, _ = _gateway(provider)
    outcome = StreamOutcome()
    assert len(await _collect(gateway.stream(_request(stream=True), outcome))) == 2
    assert outcome.usage is None
    assert outcome.cost is None
    assert outcome.chunks == 2


async def test_empty_stream_yields_nothing() -> None:
    provider = ScriptedProvider("p", ["model-a"], streams=[[]])
    gateway, clock = _gateway(provider)
    outcome = StreamOutcome()
    assert await _collect(gateway.stream(_request(stream=True), outcome)) == []
    assert outcome.provider == "p"
    assert (outcome.chunks, outcome.usage, outcome.cost) == (0, None, None)
    assert provider.opened == provider.closed == 1
    assert clock.sleeps == []


async def test_stream_retries_before_the_first_chunk() -> None:
    good = [chunk("ok"), chunk(usage=USAGE)]
    streams: list[StreamScript] = [
        [UpstreamUnavailable("503")],
        [UpstreamRateLimited("429", retry_after=1.0)],
        good,
    ]
    provider = ScriptedProvider("p", ["model-a"], streams=streams)
    gateway, clock = _gateway(provider)
    outcome = StreamOutcome()
    assert await _collect(gateway.stream(_request(stream=True), outcome)) == good
    assert clock.sleeps == [0.375, 1.0]
    assert provider.opened == provider.closed == 3  # every failed attempt was closed
    assert outcome.chunks == 2
    assert outcome.cost == Decimal("12.50")


async def test_stream_gives_up_after_max_retries_with_the_last_error() -> None:
    errors = [UpstreamTimeout(f"t{i}") for i in range(4)]
    provider = ScriptedProvider("p", ["model-a"], streams=[[e] for e in errors])
    gateway, clock = _gateway(provider)
    with pytest.raises(UpstreamTimeout) as caught:
        await _collect(gateway.stream(_request(stream=True), StreamOutcome()))
    assert caught.value is errors[3]
    assert provider.opened == 4
    assert len(clock.sleeps) == 3


async def test_stream_raises_a_non_retryable_error_at_once() -> None:
    provider = ScriptedProvider("p", ["model-a"], streams=[[UpstreamRejected("400")], [chunk("never")]])
    gateway, clock = _gateway(provider)
    with pytest.raises(UpstreamRejected):
        await _collect(gateway.stream(_request(stream=True), StreamOutcome()))
    assert provider.opened == 1
    assert clock.sleeps == []


async def test_stream_error_after_the_first_chunk_propagates_and_is_not_retried() -> None:
    failure = UpstreamUnavailable("connection reset")
    provider = ScriptedProvider(
        "p", ["model-a"], streams=[[chunk("partial"), failure], [chunk("retried!"), chunk(usage=USAGE)]]
    )
    gateway, clock = _gateway(provider)
    outcome = StreamOutcome()
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        async for item in gateway.stream(_request(stream=True), outcome):
            received.append(item)
    assert caught.value is failure
    assert [c.data["choices"] for c in received] == [chunk("partial").data["choices"]]
    assert outcome.chunks == 1
    assert outcome.usage is None
    assert provider.opened == 1
    assert provider.closed == 1
    assert clock.sleeps == []


async def test_closing_the_relay_early_closes_the_upstream_stream() -> None:
    provider = ScriptedProvider("p", ["model-a"], streams=[[chunk("a"), chunk("b"), chunk(usage=USAGE)]])
    gateway, _ = _gateway(provider)
    outcome = StreamOutcome()
    relay = gateway.stream(_request(stream=True), outcome)
    assert isinstance(relay, AsyncGenerator)
    first = await anext(relay)
    assert first.data["choices"] == chunk("a").data["choices"]
    await relay.aclose()  # the client went away
    assert provider.closed == 1
    assert outcome.chunks == 1
    assert outcome.cost is None


async def test_stream_alias_and_per_provider_policy() -> None:
    provider = ScriptedProvider(
        "p", ["model-a"], streams=[[UpstreamUnavailable("503")], [chunk("x"), chunk(usage=USAGE)]]
    )
    gateway, clock = _gateway(
        provider, aliases={"fast": "model-a"}, policies={"p": RetryPolicy(max_retries=1, base_delay=4.0)}
    )
    outcome = StreamOutcome()
    assert len(await _collect(gateway.stream(_request("fast", stream=True), outcome))) == 2
    assert [r.model for r in provider.requests] == ["model-a", "model-a"]
    assert clock.sleeps == [3.0]
    assert outcome.cost == Decimal("12.50")


class _BareIterator:
    """An async iterator without `aclose` (not a generator), as a hand-written adapter might return."""

    def __init__(self, items: list[StreamChunk | Exception]) -> None:
        self._items = items

    def __aiter__(self) -> _BareIterator:
        return self

    async def __anext__(self) -> StreamChunk:
        if not self._items:
            raise StopAsyncIteration
        item = self._items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class _BareProvider(ScriptedProvider):
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        self.requests.append(request)
        return _BareIterator(list(self.streams.pop(0)))


async def test_stream_from_an_iterator_without_aclose() -> None:
    provider = _BareProvider(
        "p", ["model-a"], streams=[[UpstreamUnavailable("503")], [chunk("a"), chunk(usage=USAGE)]]
    )
    gateway, clock = _gateway(provider)
    outcome = StreamOutcome()
    assert len(await _collect(gateway.stream(_request(stream=True), outcome))) == 2
    assert outcome.cost == Decimal("12.50")
    assert clock.sleeps == [0.375]


# --- the echo provider as a real double ---------------------------------------------------------------


def _echo_request(stream: bool = False) -> ChatRequest:
    return ChatRequest(
        ECHO_MODEL,
        {"model": ECHO_MODEL, "messages": [{"role": "user", "content": "Test message"}]},
        stream=stream,
    )


async def test_echo_through_the_gateway_costs_the_original_example() -> None:
    gateway, _ = _gateway(EchoProvider())
    result, priced = await gateway.complete(_echo_request())
    assert result.provider == "echo"
    assert priced.usage == Usage(2, 2)
    assert priced.cost == Decimal("0.0002")


async def test_echo_stream_through_the_gateway_is_priced() -> None:
    gateway, _ = _gateway(EchoProvider())
    outcome = StreamOutcome()
    chunks = await _collect(gateway.stream(_echo_request(stream=True), outcome))
    text = "".join(_delta_text(c) for c in chunks)
    assert text == "Test message"
    assert outcome.chunks == len(chunks)
    assert outcome.usage == Usage(2, 2)
    assert outcome.cost == Decimal("0.0002")


def _delta_text(item: StreamChunk) -> str:
    choices = item.data["choices"]
    assert isinstance(choices, list)
    text = ""
    for choice in choices:
        assert isinstance(choice, dict)
        delta = choice["delta"]
        assert isinstance(delta, dict)
        text += str(delta.get("content", ""))
    return text


async def test_a_call_no_chat_translation_can_carry_never_reaches_a_provider_without_its_api() -> None:
    from calcifer.domain.errors import ApiNotOffered
    from calcifer.domain.types import EMBEDDINGS, NativeCall

    provider = ScriptedProvider("p", ["model-a"], steps=[response(usage=USAGE)])
    gateway, _ = _gateway(provider)
    body = {"model": "model-a", "input": "x"}
    request = ChatRequest("model-a", body, native=NativeCall(EMBEDDINGS, body, translatable=False))
    with pytest.raises(ApiNotOffered, match="does not offer this API"):
        await gateway.complete(request)
    assert provider.requests == []
    translated = ChatRequest("model-a", body, native=NativeCall(EMBEDDINGS, body))
    await gateway.complete(translated)
    assert provider.requests[0].native is None


def test_speaks_asks_a_provider_per_model_when_it_can_tell() -> None:
    from calcifer.domain.ports import speaks

    class PerModel:
        native_apis = frozenset({"x"})

        def native_apis_for(self, model: str) -> frozenset[str]:
            return frozenset({"x"}) if model.startswith("claude") else frozenset()

    class Flat:
        native_apis = frozenset({"x"})

    assert speaks(PerModel(), "x", "claude-1") and not speaks(PerModel(), "x", "llama")
    assert speaks(Flat(), "x", "llama") and not speaks(Flat(), "y", "llama")
    assert not speaks(object(), "x", "llama")


async def test_routes_made_from_names_clients_invent_are_remembered_only_up_to_a_bound() -> None:
    from calcifer.domain import gateway as module

    class Open(ScriptedProvider):
        def supports(self, model: str) -> bool:
            return True

    provider = Open("open", [], steps=[response(usage=USAGE), response(usage=USAGE)])
    gateway, _ = _gateway(provider)
    for i in range(module.ROUTES_KEPT + 5):
        assert gateway.first_target(f"open/m{i}") == (provider, f"m{i}")
    assert len(gateway._single_routes) == module.ROUTES_KEPT
    await gateway.complete(_request(f"open/m{module.ROUTES_KEPT + 1}"))
    assert provider.requests[-1].model == f"m{module.ROUTES_KEPT + 1}"
