"""AzureOpenAIProvider: golden fixtures in Azure's wire format and end-to-end runs against a loopback fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from calcifer.domain.cost import cost_of
from calcifer.domain.errors import UpstreamRateLimited, UpstreamRejected
from calcifer.domain.pricing import PricingConfig
from calcifer.domain.types import ChatRequest, NativeCall, StreamChunk, Usage
from calcifer.providers.azure import AzureOpenAIProvider, azure_error_fields, is_prompt_filter_chunk
from calcifer.providers.openai import usage_from_openai
from tests.fakes.azure_server import FIXTURES, AzureFake, fixture

DEPLOYMENTS = {"gpt-4o": "prod-gpt4o", "gpt-4o-mini": "mini deployment"}


def stream_events() -> list[dict[str, object]]:
    raw = (FIXTURES / "stream.sse").read_bytes().decode()
    data = [block.removeprefix("data: ") for block in raw.split("\n\n") if block.strip()]
    return [json.loads(d) for d in data if d != "[DONE]"]


@pytest.fixture
async def fake() -> AsyncIterator[AzureFake]:
    async with AzureFake(set(DEPLOYMENTS.values())) as server:
        yield server


@pytest.fixture
async def azure(fake: AzureFake) -> AsyncIterator[AzureOpenAIProvider]:
    provider = AzureOpenAIProvider(
        endpoint=fake.endpoint + "/", deployments=DEPLOYMENTS, api_key=fake.api_key, api_version="2024-10-21"
    )
    await provider.start()
    yield provider
    await provider.aclose()


def chat(model: str = "gpt-4o", *, stream: bool = False) -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream, "seed": 3}
    return ChatRequest(model=model, body=body, stream=stream, include_usage=stream)


async def collect(provider: AzureOpenAIProvider, request: ChatRequest) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request)]


def test_only_the_prompt_filter_chunk_is_absorbed() -> None:
    events = stream_events()
    assert [is_prompt_filter_chunk(e) for e in events] == [True, False, False, False, False]


def test_type_null_errors_get_an_openai_type() -> None:
    raw = (FIXTURES / "error_content_filter.json").read_bytes()
    message = fixture("error_content_filter.json")["error"]["message"]
    assert azure_error_fields(raw) == (message, "invalid_request_error", "content_filter", "prompt")
    assert azure_error_fields(b"not json") is None


def test_models_are_the_deployment_map_keys() -> None:
    provider = AzureOpenAIProvider(
        endpoint="https://x.openai.azure.com", deployments=DEPLOYMENTS, api_key=None
    )
    assert provider.models == frozenset(DEPLOYMENTS) and provider.name == "azure"
    assert not provider.configured and provider.credential_setting == "AZURE_OPENAI_API_KEY"


async def test_complete_routes_to_the_deployment_with_api_key_header(
    fake: AzureFake, azure: AzureOpenAIProvider
) -> None:
    response = await azure.complete(chat("gpt-4o-mini"))
    sent = fake.received[-1]
    assert sent.deployment == "mini deployment" and sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == fake.api_key and "Authorization" not in sent.headers
    assert sent.body["seed"] == 3 and sent.body["model"] == "gpt-4o-mini"
    assert response.body == fixture("response.json")  # Azure extras pass through untouched
    assert response.usage == Usage(prompt_tokens=1200, completion_tokens=7, cached_tokens=1024)


async def test_stream_absorbs_the_empty_first_chunk(fake: AzureFake, azure: AzureOpenAIProvider) -> None:
    chunks = await collect(azure, chat(stream=True))
    assert fake.received[-1].body["stream_options"] == {"include_usage": True}
    assert [c.data for c in chunks] == stream_events()[1:]
    assert chunks[0].data["choices"][0]["delta"]["role"] == "assistant"  # type: ignore[index]
    assert chunks[-1].usage == Usage(prompt_tokens=9, completion_tokens=2)


async def test_content_filter_error_is_a_clean_400(fake: AzureFake, azure: AzureOpenAIProvider) -> None:
    fake.reply(400, fixture("error_content_filter.json"))
    with pytest.raises(UpstreamRejected) as caught:
        await azure.complete(chat())
    assert caught.value.status == 400 and caught.value.kind == "invalid_request_error"
    assert caught.value.code == "content_filter" and caught.value.param == "prompt"


async def test_bad_key_and_unknown_deployment(fake: AzureFake) -> None:
    deployments = {**DEPLOYMENTS, "gpt-4.1": "not-deployed"}
    wrong = AzureOpenAIProvider(endpoint=fake.endpoint, deployments=deployments, api_key="nope")
    right = AzureOpenAIProvider(endpoint=fake.endpoint, deployments=deployments, api_key=fake.api_key)
    await wrong.start()
    await right.start()
    try:
        with pytest.raises(UpstreamRejected) as denied:
            await collect(wrong, chat(stream=True))
        assert denied.value.status == 401 and "nope" not in denied.value.message
        with pytest.raises(UpstreamRejected) as missing:
            await right.complete(chat("gpt-4.1"))
        assert missing.value.status == 404 and missing.value.code == "DeploymentNotFound"
    finally:
        await wrong.aclose()
        await right.aclose()


async def test_rate_limit_keeps_retry_after(fake: AzureFake, azure: AzureOpenAIProvider) -> None:
    fake.reply(429, fixture("error_rate_limited.json"), headers={"Retry-After": "3"})
    with pytest.raises(UpstreamRateLimited) as caught:
        await azure.complete(chat())
    assert caught.value.retry_after == 3.0 and caught.value.retryable


def test_azure_cached_prompt_tokens_are_priced_once_at_the_cached_rate() -> None:
    # gpt-4o list price per 1M tokens: input $2.50, cached input $1.25, output $10.
    price = PricingConfig.per_million("2.50", "10", cached_input="1.25")
    usage = usage_from_openai(fixture("response.json")["usage"])
    assert usage is not None
    expected = (176 * Decimal("2.50") + 1024 * Decimal("1.25") + 7 * Decimal("10")) / 1_000_000
    assert cost_of(usage, price) == expected


async def test_the_responses_api_is_sent_natively_to_the_v1_api(
    azure: AzureOpenAIProvider, fake: AzureFake
) -> None:
    native = NativeCall("openai.responses", {"model": "gpt-4o", "input": "Hi", "store": True, "include": []})
    request = ChatRequest(
        "gpt-4o", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, native=native
    )
    answer = await azure.complete(request)
    assert answer.api == "openai.responses" and answer.body["id"] == "resp_azure1"
    assert answer.usage == Usage(prompt_tokens=20, completion_tokens=5)
    sent = fake.received[-1]
    assert (
        sent.body == {**native.body, "model": "prod-gpt4o"} and sent.query == {}
    )  # the deployment, no api-version
    events = await collect(
        azure, replace(request, stream=True, native=replace(native, body={**native.body, "stream": True}))
    )
    assert events[0].data["type"] == "response.created" and events[-1].data["type"] == "response.completed"
    assert events[-1].usage == Usage(prompt_tokens=20, completion_tokens=5)
    assert events[1].raw is not None and events[1].raw.startswith(b"event: response.in_progress\ndata: ")
    status, kind, raw = await azure.native_request("GET", "responses/resp_azure1")
    assert (status, kind, json.loads(raw)["id"]) == (200, "application/json; charset=utf-8", "resp_azure1")
    assert (await azure.native_request("GET", "responses/resp_unknown"))[0] == 404
