"""The response cache's rules (when, which key, how long) and the gateway answering from it."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import cast

import pytest

from calcifer.cache.memory import MemoryResponseCache
from calcifer.domain.attempts import RoutingConfig
from calcifer.domain.cache import CacheDirective, CacheRule, cache_key, copy_json, plan
from calcifer.domain.cost import CostCalculator
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, ChatResponse, NativeCall, StreamOutcome, Usage
from tests.domain.doubles import FakeClock, ScriptedProvider, chunk, response

USAGE = Usage(1000, 1000)
COST = Decimal("0.0125")
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_the_key_ignores_delivery_and_tagging_fields_only() -> None:
    base = cache_key("m", BODY, stream=False)
    assert base == cache_key("m", {**BODY, "user": "u1", "metadata": {"team": "x"}, "stream": False}, False)
    assert base == cache_key("m", dict(reversed(BODY.items())), False)  # field order does not matter
    assert base != cache_key("m", {**BODY, "temperature": 1}, False)
    assert base != cache_key("other", BODY, False)
    assert base != cache_key("m", BODY, stream=True)  # a stream is cached as chunks, apart


@pytest.mark.parametrize(
    ("rule", "directive", "expected"),
    [
        (None, None, None),
        (CacheRule(True, 60), None, (True, True, 60)),
        (CacheRule(False, 60), CacheDirective("on"), (True, True, 60)),
        (None, CacheDirective(None, 5), (True, True, 5)),  # Cache-Control: max-age=5 alone opts in
        (CacheRule(True, 60), CacheDirective("off"), None),
        (CacheRule(True, 60), CacheDirective("refresh"), (False, True, 60)),
        (CacheRule(True, 60), CacheDirective(None, 10), (True, True, 10)),
        (CacheRule(True, 0), None, None),
    ],
)
def test_plan_combines_the_models_rule_and_the_request(
    rule: CacheRule | None, directive: CacheDirective | None, expected: tuple[bool, bool, float] | None
) -> None:
    got = plan(rule, directive, "m", BODY, False)
    assert (None if got is None else (got.read, got.write, got.ttl)) == expected


def test_copy_json_is_deep() -> None:
    value = {"a": [{"b": 1}], "c": "x"}
    copied = cast(dict[str, list[dict[str, int]]], copy_json(value))
    assert copied == value
    copied["a"][0]["b"] = 2
    assert value["a"][0]["b"] == 1  # type: ignore[index]


def _gateway(provider: ScriptedProvider, rules: dict[str, CacheRule]) -> tuple[GatewayService, FakeClock]:
    clock = FakeClock()
    pricing = PricingRegistry()
    pricing.register("m", PricingConfig.per_million("2.50", "10.00"))
    cache = MemoryResponseCache(clock=clock.now)
    config = RoutingConfig(cache_rules=rules)
    gateway = GatewayService(
        ProviderRegistry([provider]), CostCalculator(pricing), clock, routing=config, cache=cache
    )
    return gateway, clock


async def test_a_whole_answer_is_served_from_the_cache_at_no_cost() -> None:
    provider = ScriptedProvider("p", ("m",), steps=[response("cached words", USAGE, "p")])
    gateway, clock = _gateway(provider, {"m": CacheRule(True, 60)})
    request = ChatRequest("m", BODY)
    first, priced = await gateway.complete(request)
    assert (priced.cost, priced.cache_hit, priced.attempts) == (COST, False, 1)
    first.body["usage"] = {"cost": "mutated by the edge"}  # what the HTTP layer does to its copy
    outcome = StreamOutcome()
    again, hit = await gateway.complete(request, outcome=outcome)
    assert (hit.cost, hit.cost_saved, hit.cache_hit, hit.attempts) == (Decimal(0), COST, True, 0)
    assert (hit.provider, hit.model, hit.usage) == ("p", "m", USAGE)
    assert again.body["choices"][0]["message"]["content"] == "cached words"  # type: ignore[index]
    assert "usage" not in again.body
    assert outcome.cache_hit and outcome.attempts == 0
    assert len(provider.requests) == 1
    clock.time += 61  # expired: the provider is asked again (and has nothing scripted)
    with pytest.raises(IndexError):
        await gateway.complete(request)


async def test_a_model_without_a_rule_is_not_cached_unless_asked() -> None:
    provider = ScriptedProvider("p", ("m",), steps=[response(t, USAGE) for t in "123"])
    gateway, _ = _gateway(provider, {})
    request = ChatRequest("m", BODY)
    await gateway.complete(request)
    _, priced = await gateway.complete(request)
    assert not priced.cache_hit and len(provider.requests) == 2
    await gateway.complete(request, cache=CacheDirective("refresh"))  # writes, does not read
    answer, hit = await gateway.complete(request, cache=CacheDirective("on"))
    assert hit.cache_hit and len(provider.requests) == 3
    assert answer.body["choices"][0]["message"]["content"] == "3"  # type: ignore[index]


async def test_a_stream_is_replayed_chunk_for_chunk_with_its_usage() -> None:
    provider = ScriptedProvider(
        "p", ("m",), streams=[[chunk("he"), chunk("llo"), chunk(usage=USAGE)], [chunk("x")]]
    )
    gateway, _ = _gateway(provider, {"m": CacheRule(True, 60)})
    request = ChatRequest("m", {**BODY, "stream": True}, stream=True)
    first = StreamOutcome()
    originals = [c async for c in gateway.stream(request, first)]
    originals[0].data["choices"] = []  # the edge mutates what it forwards: the cache kept its own copy
    assert (first.cost, first.cache_hit) == (COST, False)
    outcome = StreamOutcome()
    replay = [c async for c in gateway.stream(request, outcome)]
    assert [c.data["choices"][0]["delta"]["content"] for c in replay[:2]] == ["he", "llo"]  # type: ignore[index]
    assert replay[2].usage == USAGE
    assert (outcome.cost, outcome.cost_saved, outcome.cache_hit, outcome.chunks) == (
        Decimal(0),
        COST,
        True,
        3,
    )
    assert (outcome.provider, outcome.model, outcome.attempts) == ("p", "m", 0)
    assert len(provider.requests) == 1


async def test_a_stream_cut_short_is_not_cached() -> None:
    provider = ScriptedProvider("p", ("m",), streams=[[chunk("a"), chunk("b")], [chunk("c")]])
    gateway, _ = _gateway(provider, {"m": CacheRule(True, 60)})
    request = ChatRequest("m", {**BODY, "stream": True}, stream=True)
    stream = gateway.stream(request, StreamOutcome())
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    outcome = StreamOutcome()
    assert [c.data["choices"][0]["delta"]["content"] async for c in gateway.stream(request, outcome)] == ["c"]  # type: ignore[index]
    assert not outcome.cache_hit


class _Native(ScriptedProvider):
    native_apis = frozenset({"openai.responses"})


async def test_a_native_answer_is_cached_under_its_own_api() -> None:
    native = NativeCall("openai.responses", {"model": "m", "input": "hi"})
    answer = ChatResponse({"object": "response", "output": []}, USAGE, "p", api="openai.responses")
    events = [chunk("a"), chunk("", USAGE)]
    provider = _Native("p", ("m",), steps=[answer, response("chat words", USAGE, "p")], streams=[events])
    gateway, _ = _gateway(provider, {"m": CacheRule(True, 60)})
    request = ChatRequest("m", BODY, native=native)
    await gateway.complete(request)
    again, hit = await gateway.complete(request)
    assert hit.cache_hit and again.api == "openai.responses" and again.body["object"] == "response"
    # The same model asked in chat completions is not served the Responses answer.
    chat, priced = await gateway.complete(ChatRequest("m", BODY))
    assert not priced.cache_hit and chat.api == "" and len(provider.requests) == 2
    streamed = replace(request, stream=True)
    async for _ in gateway.stream(streamed, StreamOutcome()):
        pass
    outcome = StreamOutcome()
    async for _ in gateway.stream(streamed, outcome):
        pass
    assert outcome.cache_hit and outcome.api == "openai.responses" and len(provider.requests) == 3
