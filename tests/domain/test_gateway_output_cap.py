"""A translated request's output limit is lowered to the target model's maximum; nothing else is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from calcifer.domain.attempts import RoutingConfig
from calcifer.domain.cost import CostCalculator
from calcifer.domain.deployments import DeploymentSpec, RouteSpec, build_routes
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, NativeCall, StreamOutcome
from tests.domain.doubles import FakeClock, ScriptedProvider, chunk, response

MAXIMA = {"small": 16384, "big": 128000}
MESSAGES = "anthropic.messages"


class _Speaks(ScriptedProvider):
    native_apis = frozenset({MESSAGES})


def _gateway(provider: ScriptedProvider, specs: Mapping[str, RouteSpec] | None = None) -> GatewayService:
    registry = ProviderRegistry([provider])
    routes = build_routes(registry, specs or {}, max_output=MAXIMA.get)
    return GatewayService(
        registry,
        CostCalculator(PricingRegistry()),
        FakeClock(),
        routing=RoutingConfig(routes),
        max_output=MAXIMA.get,
    )


def _request(model: str, limits: Mapping[str, int], native: bool = True) -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **limits}
    call = NativeCall(MESSAGES, {"model": model, "max_tokens": 32000}) if native else None
    return ChatRequest(model, body, max_output_tokens=max(limits.values(), default=None), native=call)


async def _sent(
    provider: ScriptedProvider, request: ChatRequest, specs: Mapping[str, RouteSpec] | None = None
) -> ChatRequest:
    provider.steps.append(response())
    await _gateway(provider, specs).complete(request)
    return provider.requests[-1]


async def test_a_translated_limit_above_the_models_maximum_is_lowered_to_it() -> None:
    provider = ScriptedProvider("p", ["small"])
    sent = await _sent(provider, _request("small", {"max_completion_tokens": 32000, "max_tokens": 20000}))
    assert sent.body["max_completion_tokens"] == 16384 and sent.body["max_tokens"] == 16384
    assert sent.max_output_tokens == 16384 and sent.native is None
    assert sent.body["messages"] == [{"role": "user", "content": "hi"}]


async def test_only_the_limit_over_the_maximum_changes() -> None:
    provider = ScriptedProvider("p", ["small"])
    request = replace(
        _request("small", {"max_tokens": 20000, "max_completion_tokens": 100}), max_output_tokens=100
    )
    sent = await _sent(provider, request)
    assert (sent.body["max_tokens"], sent.body["max_completion_tokens"], sent.max_output_tokens) == (
        16384,
        100,
        100,
    )


async def test_a_limit_within_the_maximum_or_of_an_unknown_model_is_kept() -> None:
    provider = ScriptedProvider("p", ["small", "unknown"])
    within = _request("small", {"max_completion_tokens": 16384})
    assert await _sent(provider, within) == replace(within, native=None)
    unknown = _request("unknown", {"max_completion_tokens": 999_999})
    assert await _sent(provider, unknown) == replace(unknown, native=None)
    unlimited = _request("small", {})
    assert await _sent(provider, unlimited) == replace(unlimited, native=None)


async def test_a_direct_chat_request_is_sent_as_the_client_asked() -> None:
    provider = ScriptedProvider("p", ["small"])
    direct = _request("small", {"max_completion_tokens": 32000}, native=False)
    assert await _sent(provider, direct) == direct


async def test_a_native_call_its_provider_speaks_is_not_capped() -> None:
    provider = _Speaks("p", ["small"])
    request = _request("small", {"max_completion_tokens": 32000})
    assert await _sent(provider, request) == request


async def test_each_declared_deployment_caps_to_its_own_model() -> None:
    provider = ScriptedProvider("p", ["small", "big"])
    specs = {
        "alias": RouteSpec((DeploymentSpec("p", "small"),)),
        "wide": RouteSpec((DeploymentSpec("p", "big"),)),
    }
    request = _request("alias", {"max_completion_tokens": 200000})
    assert (await _sent(provider, request, specs)).body["max_completion_tokens"] == 16384
    assert (await _sent(provider, replace(request, model="wide"), specs)).body[
        "max_completion_tokens"
    ] == 128000


async def test_a_translated_stream_is_capped_too() -> None:
    provider = ScriptedProvider("p", ["small"], streams=[[chunk("hi")]])
    request = replace(_request("small", {"max_completion_tokens": 32000}), stream=True)
    async for _ in _gateway(provider).stream(request, StreamOutcome()):
        pass
    assert provider.requests[0].body["max_completion_tokens"] == 16384
