"""The response cache's rules (when, which key, how long) and the gateway answering from it."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import pytest

from calcifer.cache.memory import MemoryResponseCache
from calcifer.domain.attempts import RoutingConfig
from calcifer.domain.cache import (
    CacheDirective,
    CachePlan,
    CacheRule,
    _canonical_deep,
    cache_key,
    canonical_json,
    copy_json,
    plan,
)
from calcifer.domain.cost import CostCalculator
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import (
    ANTHROPIC_MESSAGES,
    ChatRequest,
    ChatResponse,
    NativeCall,
    StreamChunk,
    StreamOutcome,
    Usage,
)
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


def test_a_native_call_is_keyed_by_its_api_body_headers_and_query_apart_from_chat() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    native = NativeCall(ANTHROPIC_MESSAGES, body, (("anthropic-beta", "b1"),), "beta=true")
    key = cache_key("m", BODY, False, native)
    assert key.startswith("c:anthropic.messages:") and key != cache_key("m", body, False)
    assert key == cache_key("m", {"other": "translation"}, False, native)  # the chat body plays no part
    tagged = NativeCall(
        ANTHROPIC_MESSAGES,
        {**body, "metadata": {"user_id": "u"}, "stream": False},
        native.headers,
        "beta=true",
    )
    assert key == cache_key("m", BODY, False, tagged)
    assert key != cache_key("m", BODY, False, NativeCall(ANTHROPIC_MESSAGES, body, (), "beta=true"))
    assert key != cache_key("m", BODY, False, NativeCall(ANTHROPIC_MESSAGES, body, native.headers))
    assert key != cache_key(
        "m", BODY, False, NativeCall("openai.responses", body, native.headers, "beta=true")
    )
    assert plan(CacheRule(True, 60), None, "m", BODY, True, native) == CachePlan(
        "s:" + key[2:], True, True, 60
    )


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
    native_apis = frozenset({ANTHROPIC_MESSAGES})


async def test_a_native_answer_is_replayed_in_its_own_api_only_to_the_same_call() -> None:
    message: dict[str, object] = {"type": "message", "content": [{"type": "text", "text": "hi"}]}
    events = [StreamChunk({"type": "content_block_delta"}), StreamChunk({"type": "message_delta"}, USAGE)]
    provider = _Native(
        "p",
        ("m",),
        steps=[ChatResponse(message, USAGE, "p", ANTHROPIC_MESSAGES, b"{}"), response("chat", USAGE)],
        streams=[events],
    )
    gateway, _ = _gateway(provider, {"m": CacheRule(True, 60)})
    native = NativeCall(ANTHROPIC_MESSAGES, {"model": "m", "max_tokens": 5})
    request = ChatRequest("m", BODY, native=native)
    await gateway.complete(request)
    hit, priced = await gateway.complete(request)
    assert priced.cache_hit and (hit.api, hit.body, hit.raw) == (ANTHROPIC_MESSAGES, message, None)
    plain, priced = await gateway.complete(ChatRequest("m", BODY))  # the chat route's own request: a miss
    assert not priced.cache_hit and plain.api == "" and len(provider.requests) == 2
    streamed = ChatRequest("m", BODY, stream=True, native=native)
    [_ async for _ in gateway.stream(streamed, StreamOutcome())]
    outcome = StreamOutcome()
    replay = [c.data async for c in gateway.stream(streamed, outcome)]
    assert outcome.cache_hit and outcome.api == ANTHROPIC_MESSAGES
    assert replay == [{"type": "content_block_delta"}, {"type": "message_delta"}]


def _deep(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value, "z": level} if level % 2 else [value, level]
    return value


def test_the_key_of_a_body_deeper_than_recursion_reaches_is_made() -> None:
    deep = {"messages": [{"role": "user", "content": "x"}], "extra": _deep(5000)}
    key = cache_key("m", deep, False)
    assert key == cache_key("m", deep, False) and key.startswith("c:")
    assert key != cache_key("m", {**deep, "extra": _deep(4999)}, False)


@pytest.mark.parametrize(
    "value",
    [
        {
            "b": [1, 2.5, {"z": None, "a": 'é"\n'}],
            "a": True,
            "t": (1, "x"),
            "n": float("inf"),
            "d": Decimal("1.5"),
        },
        [],
        {},
        "text",
        _deep(40),
    ],
)
def test_the_deep_encoding_is_the_same_text_as_json_dumps(value: object) -> None:
    assert _canonical_deep(value) == canonical_json(value)
