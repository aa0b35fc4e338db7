"""GeminiProvider end to end against a loopback fake speaking Gemini's REST API over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from calcifer.catalogue.source import provider_entries
from calcifer.domain.cost import CostCalculator, cost_of
from calcifer.domain.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import Credentialed, Lifecycle, Provider
from calcifer.domain.pricing import PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, StreamChunk, StreamOutcome, Usage
from calcifer.providers.gemini import GeminiProvider
from calcifer.providers.gemini_wire import usage_from_gemini
from tests.fakes.gemini_server import GeminiFake
from tests.providers.test_gemini_wire import load, sse_events

MODELS = frozenset({"gemini-2.5-flash", "gemini-2.5-pro"})


@pytest.fixture
async def fake() -> AsyncIterator[GeminiFake]:
    async with GeminiFake() as server:
        yield server


@pytest.fixture
async def provider(fake: GeminiFake) -> AsyncIterator[GeminiProvider]:
    gemini = GeminiProvider(models=MODELS, api_key=fake.api_key, base_url=fake.base_url)
    await gemini.start()
    yield gemini
    await gemini.aclose()


def chat(text: str = "hello there", *, stream: bool = False, model: str = "gemini-2.5-flash") -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return ChatRequest(model=model, body=body, stream=stream, include_usage=stream)


async def collect(provider: GeminiProvider, request: ChatRequest) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request)]


def test_satisfies_the_ports() -> None:
    gemini = GeminiProvider(models=MODELS, api_key=None)
    assert isinstance(gemini, Provider) and isinstance(gemini, Lifecycle) and isinstance(gemini, Credentialed)
    assert not gemini.configured and gemini.credential_setting == "GEMINI_API_KEY"
    assert gemini.supports("gemini-2.5-pro") and not gemini.supports("gpt-4o")


async def test_complete_sends_the_key_in_a_header_and_translates(
    fake: GeminiFake, provider: GeminiProvider
) -> None:
    response = await provider.complete(chat("hello there"))
    sent = fake.received[-1]
    assert sent.model == "gemini-2.5-flash" and sent.method == "generateContent"
    assert sent.headers["x-goog-api-key"] == fake.api_key and "key" not in sent.query
    assert sent.body == {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    assert response.body["choices"][0]["message"]["content"] == "echo: hello there"  # type: ignore[index]
    assert response.body["object"] == "chat.completion"
    assert response.usage == Usage(prompt_tokens=10, completion_tokens=4)
    assert response.provider == "gemini"


async def test_complete_with_golden_response(fake: GeminiFake, provider: GeminiProvider) -> None:
    fake.reply(200, load("response_thinking.gemini.json"))
    response = await provider.complete(chat())
    assert response.body["choices"] == load("response_thinking.openai.json")["choices"]
    assert response.usage == Usage(prompt_tokens=15, completion_tokens=49, reasoning_tokens=40)


async def test_stream_relays_chunks_and_ends_with_usage(fake: GeminiFake, provider: GeminiProvider) -> None:
    chunks = await collect(provider, chat("the sky", stream=True))
    sent = fake.received[-1]
    assert sent.method == "streamGenerateContent" and sent.query == {"alt": "sse"}
    deltas: list[Any] = [c.data["choices"][0]["delta"] for c in chunks if c.data["choices"]]  # type: ignore[index]
    text = "".join(d.get("content", "") for d in deltas)
    assert text == "echo: the sky"
    assert chunks[-1].data["choices"] == [] and chunks[-1].usage == Usage(
        prompt_tokens=10, completion_tokens=4
    )
    assert [c for c in chunks if c.usage is not None] == [chunks[-1]]
    assert len({c.data["id"] for c in chunks}) == 1


async def test_stream_of_golden_tool_call(fake: GeminiFake, provider: GeminiProvider) -> None:
    fake.stream(sse_events("stream_tool_call.sse"))
    chunks = await collect(provider, chat(stream=True))
    finishes = [c.data["choices"][0]["finish_reason"] for c in chunks if c.data["choices"]]  # type: ignore[index]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage == Usage(prompt_tokens=30, completion_tokens=125, reasoning_tokens=100)


async def test_stream_cut_short_yields_usage_then_fails(fake: GeminiFake, provider: GeminiProvider) -> None:
    fake.stream(sse_events("stream_text.sse")[:2])
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable, match="without a finishReason"):
        async for chunk in provider.stream(chat(stream=True)):
            seen.append(chunk)
    assert seen[-1].usage == Usage(prompt_tokens=8, completion_tokens=5)


async def test_error_event_inside_a_stream_fails_it(fake: GeminiFake, provider: GeminiProvider) -> None:
    fake.stream([{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}])
    with pytest.raises(UpstreamUnavailable, match="Internal error encountered"):
        await collect(provider, chat(stream=True))


async def test_bad_key_is_a_401(fake: GeminiFake) -> None:
    gemini = GeminiProvider(models=MODELS, api_key="wrong", base_url=fake.base_url)
    await gemini.start()
    try:
        with pytest.raises(UpstreamRejected) as caught:
            await gemini.complete(chat())
        assert caught.value.status == 401 and caught.value.code == "invalid_api_key"
        assert "wrong" not in caught.value.message
        with pytest.raises(UpstreamRejected) as streamed:
            await collect(gemini, chat(stream=True))
        assert streamed.value.status == 401
    finally:
        await gemini.aclose()


async def test_quota_error_is_retryable_with_its_delay(fake: GeminiFake, provider: GeminiProvider) -> None:
    fake.reply(429, load("error_quota.json"))
    with pytest.raises(UpstreamRateLimited) as caught:
        await provider.complete(chat())
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert caught.value.message.startswith("You exceeded your current quota")


async def test_server_error_is_retryable_and_not_found_is_not(
    fake: GeminiFake, provider: GeminiProvider
) -> None:
    fake.reply(503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    with pytest.raises(UpstreamUnavailable) as overloaded:
        await provider.complete(chat())
    assert overloaded.value.status == 503 and overloaded.value.retryable
    fake.reply(404, load("error_not_found.json"))
    with pytest.raises(UpstreamRejected) as missing:
        await collect(provider, chat(stream=True))
    assert missing.value.status == 404 and not missing.value.retryable


async def test_a_base_url_that_names_the_version_is_used_as_is(fake: GeminiFake) -> None:
    gemini = GeminiProvider(models=MODELS, api_key=fake.api_key, base_url=fake.base_url + "/v1beta/")
    await gemini.start()
    try:
        response = await gemini.complete(chat("versioned"))
    finally:
        await gemini.aclose()
    assert response.body["choices"][0]["message"]["content"] == "echo: versioned"  # type: ignore[index]


async def test_unstarted_provider_fails_cleanly() -> None:
    gemini = GeminiProvider(models=MODELS, api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(UpstreamUnavailable, match="not started"):
        await gemini.complete(chat())


def test_thinking_and_cache_are_priced_at_list_price() -> None:
    # gemini-2.5-flash list price per 1M tokens: input $0.30, cached input $0.03, output $2.50.
    price = provider_entries("google")["gemini-2.5-flash"].history[-1][1]
    meta = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 400,
        "candidatesTokenCount": 100,
        "thoughtsTokenCount": 50,
    }
    usage = usage_from_gemini(meta)
    assert usage is not None
    expected = (600 * Decimal("0.30") + 400 * Decimal("0.03") + 150 * Decimal("2.50")) / 1_000_000
    assert cost_of(usage, price) == expected


def test_long_context_tier_prices_every_token_at_the_tier_rate() -> None:
    # gemini-2.5-pro: $1.25 in / $10 out up to 200k prompt tokens; $2.50 / $15 above.
    price = provider_entries("google")["gemini-2.5-pro"].history[-1][1]
    small = Usage(prompt_tokens=200_000, completion_tokens=1_000)
    large = Usage(prompt_tokens=200_001, completion_tokens=1_000)
    assert cost_of(small, price) == (200_000 * Decimal("1.25") + 1_000 * Decimal("10")) / 1_000_000
    assert cost_of(large, price) == (200_001 * Decimal("2.50") + 1_000 * Decimal("15")) / 1_000_000


class _Clock:
    def now(self) -> float:
        return 1764000000.0

    async def sleep(self, seconds: float) -> None:
        return None


async def test_gateway_prices_gemini_streams_and_answers_from_the_catalogue(provider: GeminiProvider) -> None:
    prices = PricingRegistry("test")
    for since, config in provider_entries("google")["gemini-2.5-flash"].history:
        prices.register("gemini-2.5-flash", config, since=since)
    gateway = GatewayService(ProviderRegistry([provider]), CostCalculator(prices), _Clock())
    # The fake reports 10 prompt and 4 candidate tokens: $0.30 and $2.50 per 1M.
    expected = (10 * Decimal("0.30") + 4 * Decimal("2.50")) / 1_000_000
    _response, priced = await gateway.complete(chat())
    outcome = StreamOutcome()
    chunks = [c async for c in gateway.stream(chat(stream=True), outcome)]
    assert priced.cost == expected and outcome.cost == expected and outcome.provider == "gemini"
    assert chunks[-1].usage == outcome.usage
