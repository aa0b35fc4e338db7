"""AnthropicProvider's native lane against a loopback fake of Anthropic: a client's own Messages call
goes up as it came (bytes, version, betas, query), and its answer and stream come back as the upstream's
bytes with the usage lifted out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calcifer.domain.errors import ProviderError, UpstreamRejected, UpstreamUnavailable
from calcifer.domain.ports import NativeApis
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatRequest, NativeCall, Usage
from calcifer.providers._http import native_payload
from calcifer.providers.anthropic import AnthropicProvider
from calcifer.providers.anthropic_native import NativeEvents, sse_frame
from tests.fakes.anthropic_server import (
    API_KEY,
    AnthropicFake,
    compact,
    error_body,
    text_events,
    tool_use_events,
)

MODEL = "claude-sonnet-4-5"
BETA = "claude-code-20250219,interleaved-thinking-2025-05-14"
# A client's body as it wrote it: spaces, a key order of its own, an escaped non-ASCII character, a
# field the gateway does not know, and a signed thinking block from an earlier turn.
CLIENT_BYTES = (
    b'{"model": "claude-sonnet-4-5", "max_tokens": 32000,'
    b' "messages": [{"role": "user", "content": "caf\\u00e9"}, {"role": "assistant",'
    b' "content": [{"type": "thinking", "thinking": "hm", "signature": "EqQB+/=="},'
    b' {"type": "text", "text": "ok"}]}, {"role": "user", "content": "again"}],'
    b' "thinking": {"type": "enabled", "budget_tokens": 31999}, "future_field": {"x": [1, 2.50]}}'
)


def native_request(
    raw: bytes = CLIENT_BYTES, *, model: str = MODEL, stream: bool = False, version: str | None = "2023-06-01"
) -> ChatRequest:
    body = json.loads(raw)
    headers = (("anthropic-beta", BETA),) + ((("anthropic-version", version),) if version else ())
    native = NativeCall(ANTHROPIC_MESSAGES, body, headers, "beta=true", raw)
    chat_body = {"model": body["model"], "messages": [{"role": "user", "content": "again"}]}
    return ChatRequest(model, chat_body, stream=stream, native=native)


def test_speaks_the_messages_api() -> None:
    provider = AnthropicProvider(models=frozenset({MODEL}), api_key=None)
    assert isinstance(provider, NativeApis) and provider.native_apis == {ANTHROPIC_MESSAGES}


async def test_the_clients_own_bytes_headers_and_query_go_up(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.reply(200, json.loads(compact({**_message([{"type": "text", "text": "hi"}]), "new_field": True})))
    response = await provider.complete(native_request(version="2099-01-01"))
    sent = fake.received[0]
    assert sent.raw == CLIENT_BYTES
    assert (sent.headers["anthropic-version"], sent.headers["anthropic-beta"]) == ("2099-01-01", BETA)
    assert sent.query == "beta=true" and sent.headers["x-api-key"] == API_KEY
    assert response.api == ANTHROPIC_MESSAGES and response.provider == "anthropic"
    assert response.raw is not None and json.loads(response.raw) == response.body
    assert response.body["new_field"] is True
    assert response.usage == Usage(
        prompt_tokens=11 + 30 + 500, completion_tokens=7, cached_tokens=500, cache_write_tokens=30
    )


async def test_without_a_version_the_gateways_default_is_sent(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    await provider.complete(native_request(version=None))
    assert fake.received[0].headers["anthropic-version"] == "2023-06-01"


async def test_a_renamed_model_is_the_only_change(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    await provider.complete(native_request(model="claude-haiku-4-5"))
    sent = fake.received[0]
    assert sent.raw != CLIENT_BYTES
    assert sent.body == {**json.loads(CLIENT_BYTES), "model": "claude-haiku-4-5"}


def test_payload_without_the_clients_bytes_is_its_object_encoded() -> None:
    native = NativeCall(ANTHROPIC_MESSAGES, {"model": MODEL, "max_tokens": 5})
    assert native_payload(native, MODEL) == b'{"model":"claude-sonnet-4-5","max_tokens":5}'


async def test_an_upstream_rejection_keeps_its_own_body(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.reply(400, error_body("invalid_request_error", "thinking.budget_tokens: too large"))
    with pytest.raises(UpstreamRejected) as caught:
        await provider.complete(native_request())
    error = caught.value
    assert (error.status, error.api) == (400, ANTHROPIC_MESSAGES)
    assert (
        error.body
        == compact(error_body("invalid_request_error", "thinking.budget_tokens: too large")).encode()
    )


async def test_an_error_that_is_not_anthropics_is_not_kept(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.reply(502, "<html>bad gateway</html>")
    with pytest.raises(UpstreamUnavailable) as caught:
        await provider.complete(native_request())
    assert (caught.value.api, caught.value.body) == ("", None)


async def test_the_stream_is_relayed_event_by_event_as_its_bytes(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    events = tool_use_events(
        MODEL, "Read", {"file_path": "a.txt"}, thinking="Let me look.", signature="Sig+/=", tool_id="toolu_9"
    )
    fake.stream(events)
    chunks = [chunk async for chunk in provider.stream(native_request(stream=True))]
    assert [chunk.raw for chunk in chunks] == [
        f"event: {e['type']}\ndata: {compact(e)}\n\n".encode() for e in events
    ]
    assert [chunk.data for chunk in chunks] == events
    priced = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert priced == [Usage(prompt_tokens=120, completion_tokens=40)]  # on the message_delta
    assert chunks[-2].data["type"] == "message_delta" and chunks[-2].usage is not None
    assert fake.received[0].raw == CLIENT_BYTES and fake.received[0].query == "beta=true"


async def test_a_stream_error_event_is_raised_with_its_own_body(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.stream([text_events(MODEL, "Hi")[0], error])
    seen: list[Any] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in provider.stream(native_request(stream=True)):
            seen.append(chunk.data["type"])
    assert seen == ["message_start"]
    assert (caught.value.status, caught.value.api, caught.value.body) == (
        503,
        ANTHROPIC_MESSAGES,
        compact(error).encode(),
    )


async def test_a_stream_that_ends_without_message_stop_fails(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.stream(text_events(MODEL, "Hi"), cut=True)
    with pytest.raises(UpstreamUnavailable, match="without message_stop"):
        async for _ in provider.stream(native_request(stream=True)):
            pass


async def test_a_stream_refused_before_it_starts_keeps_the_upstreams_body(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.reply(404, error_body("not_found_error", "model: claude-nope"))
    with pytest.raises(UpstreamRejected) as caught:
        async for _ in provider.stream(native_request(stream=True)):
            pass
    assert caught.value.api == ANTHROPIC_MESSAGES and b"claude-nope" in (caught.value.body or b"")


async def test_count_tokens_forwards_the_clients_count_request(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    raw = b'{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"one two three"}]}'
    assert await provider.count_tokens(native_request(raw)) == 6
    sent = fake.received[0]
    assert (sent.raw, sent.query, sent.headers["anthropic-beta"]) == (raw, "beta=true", BETA)


def test_events_without_a_name_are_named_after_their_type() -> None:
    events = NativeEvents("anthropic")
    chunk = events.feed("", b'{"type":"ping"}')
    assert chunk.raw == b'event: ping\ndata: {"type":"ping"}\n\n' and chunk.usage is None
    assert events.feed("", b'{"no_type":1}').raw == b'event: message\ndata: {"no_type":1}\n\n'


def test_a_multi_line_data_event_keeps_one_data_line_each() -> None:
    assert sse_frame("x", b'{\n"a":1}') == b'event: x\ndata: {\ndata: "a":1}\n\n'


def _message(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "msg_n",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 500,
            "output_tokens": 7,
        },
    }
