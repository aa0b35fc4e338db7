"""AnthropicProvider end to end against a loopback fake of Anthropic's Messages API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from calcifer.domain.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from calcifer.domain.ports import Credentialed, Lifecycle, Provider
from calcifer.domain.types import ChatRequest, StreamChunk, Usage
from calcifer.providers.anthropic import AnthropicProvider
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, error_body
from tests.providers.conftest import ANTHROPIC_MODELS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
MODELS = ANTHROPIC_MODELS


def chat(model: str = "claude-sonnet-4-5", stream: bool = False, **extra: Any) -> ChatRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    return ChatRequest(model=model, body=body, stream=stream)


async def collect(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in chunks]


def test_implements_the_ports() -> None:
    anthropic = AnthropicProvider(models=MODELS, api_key=None)
    assert isinstance(anthropic, Provider)
    assert isinstance(anthropic, Lifecycle)
    assert isinstance(anthropic, Credentialed)
    assert not anthropic.configured
    assert anthropic.credential_setting == "ANTHROPIC_API_KEY"
    assert anthropic.supports("claude-haiku-4-5")
    assert not anthropic.supports("gpt-4o")


async def test_complete_sends_anthropic_headers_and_translates(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    response = await provider.complete(chat(temperature=0.5))
    sent = fake.received[0]
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "temperature": 0.5,
    }
    assert response.body["choices"][0]["message"]["content"] == "echo: hello there"  # type: ignore[index]
    assert response.body["object"] == "chat.completion"
    assert response.usage == Usage(prompt_tokens=11, completion_tokens=5)
    assert response.provider == "anthropic"


async def test_model_maximum_output_is_the_default_max_tokens(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    await provider.complete(chat("claude-haiku-4-5"))
    await provider.complete(chat("claude-haiku-4-5", max_completion_tokens=10))
    assert [r.body["max_tokens"] for r in fake.received] == [64000, 10]


async def test_complete_golden_message(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.reply(200, json.loads((FIXTURES / "message_tool_use.json").read_text()))
    response = await provider.complete(chat())
    expected = json.loads((FIXTURES / "completion_tool_use.json").read_text())
    expected["created"] = response.body["created"]
    assert response.body == expected
    assert response.usage is not None and response.usage.cache_write_tokens == 1000


async def test_stream_with_tool_use(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.stream_raw((FIXTURES / "stream_tool_use.sse").read_bytes())
    chunks = await collect(provider.stream(chat(stream=True)))
    assert fake.received[0].body["stream"] is True
    expected = json.loads((FIXTURES / "stream_tool_use.chunks.json").read_text())
    for chunk in expected:
        chunk["created"] = chunks[0].data["created"]
    assert [c.data for c in chunks] == expected
    assert [c.usage for c in chunks if c.usage] == [Usage(prompt_tokens=377, completion_tokens=65)]


async def test_stream_default_echo(provider: AnthropicProvider) -> None:
    chunks = await collect(provider.stream(chat(stream=True)))
    text = "".join(
        str(choice["delta"].get("content") or "")
        for c in chunks
        for choice in c.data["choices"]  # type: ignore[attr-defined]
    )
    assert text == "echo: hello there"
    assert chunks[-1].data["choices"] == []
    assert chunks[-1].usage == Usage(11, 5)


async def test_overloaded_529_is_retryable_503_with_retry_after(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    body = json.loads((FIXTURES / "error_overloaded.json").read_text())
    fake.reply(529, body, {"retry-after": "7"})
    with pytest.raises(UpstreamUnavailable) as caught:
        await provider.complete(chat())
    error = caught.value
    assert (error.status, error.kind, error.message, error.retry_after) == (
        503,
        "overloaded_error",
        "Overloaded",
        7.0,
    )
    assert error.retryable


async def test_stream_opening_error_is_typed(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.reply(429, error_body("rate_limit_error", "Number of requests has exceeded your rate limit"))
    with pytest.raises(UpstreamRateLimited) as caught:
        await collect(provider.stream(chat(stream=True)))
    assert caught.value.message == "Number of requests has exceeded your rate limit"


async def test_bad_request_passes_upstream_message(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.reply(400, error_body("invalid_request_error", "temperature: range: 0..1"))
    with pytest.raises(UpstreamRejected) as caught:
        await provider.complete(chat(temperature=1.5))
    assert (caught.value.status, caught.value.kind, caught.value.message) == (
        400,
        "invalid_request_error",
        "temperature: range: 0..1",
    )
    assert not caught.value.retryable


async def test_wrong_key_is_authentication_error(fake: AnthropicFake) -> None:
    anthropic = AnthropicProvider(models=MODELS, api_key="sk-ant-wrong", base_url=fake.base_url, timeout=5)
    await anthropic.start()
    try:
        with pytest.raises(UpstreamRejected) as caught:
            await anthropic.complete(chat())
    finally:
        await anthropic.aclose()
    assert (caught.value.status, caught.value.kind) == (401, "authentication_error")
    assert "sk-ant-wrong" not in caught.value.message


async def test_error_event_mid_stream_raises_after_chunks(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    start: dict[str, object] = {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    fake.stream(
        [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
    )
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        async for chunk in provider.stream(chat(stream=True)):
            seen.append(chunk)
    assert len(seen) == 2
    assert caught.value.kind == "overloaded_error"


async def test_stream_cut_before_message_stop(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.stream(
        [
            {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 1}}},
            {"type": "message_stop"},
        ],
        cut=True,
    )
    with pytest.raises(UpstreamUnavailable, match="without message_stop"):
        await collect(provider.stream(chat(stream=True)))


async def test_untranslatable_request_is_not_sent(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequest):
        await provider.complete(chat(n=3))
    assert fake.received == []


async def test_unreachable_upstream_is_unavailable() -> None:
    anthropic = AnthropicProvider(models=MODELS, api_key=API_KEY, base_url="http://127.0.0.1:9", timeout=2)
    await anthropic.start()
    try:
        with pytest.raises(UpstreamUnavailable):
            await anthropic.complete(chat())
    finally:
        await anthropic.aclose()


async def test_count_tokens_sends_only_what_the_endpoint_accepts(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    request = chat(max_completion_tokens=50, temperature=0.1, stop="x", user="u")
    assert await provider.count_tokens(request) == 5  # "hello there": 2 words + 3 for the message
    assert set(fake.received[-1].body) == {"model", "messages"}


async def test_count_tokens_error_is_typed(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.reply(404, error_body("not_found_error", "model: claude-x"))
    with pytest.raises(UpstreamRejected) as caught:
        await provider.count_tokens(chat())
    assert (caught.value.status, caught.value.kind) == (404, "not_found_error")


async def test_maximum_output_is_learned_from_the_models_api(fake: AnthropicFake) -> None:
    anthropic = AnthropicProvider(
        models=frozenset({"claude-sonnet-4-5", "claude-opus-4-1"}),
        max_output={"claude-opus-4-1": 1000},
        api_key=API_KEY,
        base_url=fake.base_url,
        discover_max_output=True,
    )
    await anthropic.start()
    try:
        await anthropic.complete(chat("claude-sonnet-4-5"))
        await anthropic.complete(chat("claude-opus-4-1"))
    finally:
        await anthropic.aclose()
    # Learned under the dated id's alias; a maximum given by configuration wins.
    assert [r.body["max_tokens"] for r in fake.received] == [64000, 1000]
    assert anthropic.max_tokens_for("claude-sonnet-4-5-20250929") == 64000


async def test_models_api_failure_keeps_the_defaults(
    fake: AnthropicFake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reply(500, error_body("api_error", "Internal server error"))
    anthropic = AnthropicProvider(
        models=MODELS, api_key=API_KEY, base_url=fake.base_url, discover_max_output=True
    )
    await anthropic.start()
    try:
        assert anthropic.max_tokens_for("claude-sonnet-4-5") == 4096
        assert "could not read Anthropic's model limits: Internal server error" in caplog.text
        fake.reply(503, error_body("overloaded_error", "Overloaded"))
        with pytest.raises(UpstreamUnavailable):
            await anthropic.learn_max_output()
    finally:
        await anthropic.aclose()
