"""The official `anthropic` SDK drives `/v1/messages` on a real gateway server, for Claude (through
a loopback fake of Anthropic) and for a non-Claude model (echo), streaming included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, error_body
from tests.fakes.threaded import AiohttpServer, AsgiServer

from calcifer.app import create_app
from calcifer.config.settings import Settings
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.providers.anthropic import AnthropicProvider

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
CLAUDE = "claude-test-model"
MTOK = Decimal(1_000_000)
# List prices per 1M tokens used by these tests: input, output, cache read, cache write (5 minutes).
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE = Decimal(3), Decimal(15), Decimal("0.30"), Decimal("3.75")


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    fake = AnthropicFake()
    server = AiohttpServer(fake.app())
    fake.base_url = server.url
    yield fake
    server.close()


@pytest.fixture
def gateway(fake: AnthropicFake) -> Iterator[AsgiServer]:
    pricing = PricingRegistry()
    pricing.register(
        CLAUDE, PricingConfig.per_million(INPUT, OUTPUT, cached_input=CACHE_READ, cache_write=CACHE_WRITE)
    )
    provider = AnthropicProvider(
        models=frozenset({CLAUDE}), api_key=API_KEY, base_url=fake.base_url, timeout=5
    )
    app = create_app(Settings(), providers=[provider], pricing=pricing)
    server = AsgiServer(app)
    yield server
    server.close()


@pytest.fixture
def client(gateway: AsgiServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0)


def cost_of(usage: Any) -> Decimal:
    assert usage.model_extra is not None
    return Decimal(str(usage.model_extra["cost"]))


def test_message_from_claude_is_priced(client: anthropic.Anthropic, fake: AnthropicFake) -> None:
    message = client.messages.create(
        model=CLAUDE,
        max_tokens=100,
        system="Be brief.",
        extra_body={"temperature": 0.5},
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "echo: Hello"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 5)
    assert cost_of(message.usage) == (11 * INPUT + 5 * OUTPUT) / MTOK
    sent = fake.received[-1]
    # A Claude model gets the SDK's own request: its API version, its body as it wrote it.
    assert sent.headers["anthropic-version"] == "2026-10-21"  # the anthropic SDK 2.x's version
    assert sent.body["system"] == "Be brief."
    assert (sent.body["max_tokens"], sent.body["temperature"]) == (100, 0.5)


def test_cache_reads_and_writes_round_trip_and_are_priced_at_their_rates(
    client: anthropic.Anthropic, fake: AnthropicFake
) -> None:
    fake.reply(200, json.loads((FIXTURES / "message_tool_use.json").read_text()))
    message = client.messages.create(
        model=CLAUDE,
        max_tokens=1000,
        system=[{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Weather?"}],
    )
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        50,
        2000,
        1000,
    )
    # 50 plain input + 2000 cache reads + 1000 cache writes + 120 output, each at its own list price.
    assert cost_of(usage) == (50 * INPUT + 2000 * CACHE_READ + 1000 * CACHE_WRITE + 120 * OUTPUT) / MTOK
    assert message.stop_reason == "tool_use"
    tool = message.content[-1]
    assert tool.type == "tool_use" and tool.input == {"location": "Paris, FR", "unit": "celsius"}
    # The Anthropic upstream still gets the client's cache_control.
    assert fake.received[-1].body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_stream_with_tool_use(client: anthropic.Anthropic, fake: AnthropicFake) -> None:
    fake.stream_raw((FIXTURES / "stream_tool_use.sse").read_bytes())
    tools: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    with client.messages.stream(
        model=CLAUDE, max_tokens=200, tools=tools, messages=[{"role": "user", "content": "Paris?"}]
    ) as stream:
        events = list(stream)
        message = stream.get_final_message()
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    deltas = [e for e in events if e.type == "message_delta"]
    assert "".join(texts) == "I'll check the current weather in Paris for you."
    assert [b.type for b in message.content] == ["text", "tool_use"]
    tool = message.content[1]
    assert tool.type == "tool_use" and tool.input == {"location": "Paris"}
    assert tool.id == "toolu_01NRLabsLyVHZPKxbKvkfSMn"
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (377, 65)
    # The cost comes in the `message_delta` event's usage (the SDK's snapshot keeps only known fields).
    assert len(deltas) == 1
    assert cost_of(deltas[0].usage) == (377 * INPUT + 65 * OUTPUT) / MTOK


def test_any_routable_model_works_through_messages(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="echo4", max_tokens=50, messages=[{"role": "user", "content": "hello world"}]
    ) as stream:
        events = list(stream)
        message = stream.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == "hello world"
    [delta] = [e for e in events if e.type == "message_delta"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 2)
    # echo4 costs $0.05 per 1k tokens, input and output.
    assert cost_of(delta.usage) == Decimal(4) * Decimal("0.05") / 1000
    plain = client.messages.create(
        model="echo4", max_tokens=1, messages=[{"role": "user", "content": "a b c"}]
    )
    assert plain.stop_reason == "max_tokens"


def test_overloaded_upstream_is_503_overloaded_error(
    client: anthropic.Anthropic, fake: AnthropicFake
) -> None:
    fake.reply(529, error_body("overloaded_error", "Overloaded"), {"retry-after": "30"})
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 503
    assert error.body == error_body("overloaded_error", "Overloaded")  # Anthropic's own body
    assert error.response.headers["retry-after"] == "30"


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_invalid_request_uses_anthropic_error_shape(gateway: AsgiServer) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="echo4", max_tokens=10, messages=[{"role": "tool", "content": "x"}])  # type: ignore[misc,list-item]
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_error_event_mid_stream_reaches_the_sdk(client: anthropic.Anthropic, fake: AnthropicFake) -> None:
    start = {"id": "msg_e", "type": "message", "role": "assistant", "model": CLAUDE, "content": []}
    fake.stream(
        [
            {"type": "message_start", "message": {**start, "usage": {"input_tokens": 3, "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
    )
    received: list[str] = []
    request: Any = {"model": CLAUDE, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(**request) as stream,
    ):
        received.extend(stream.text_stream)
    assert received == ["Par"]


def test_count_tokens_for_claude_is_answered_by_anthropic(
    client: anthropic.Anthropic, fake: AnthropicFake
) -> None:
    counted = client.messages.count_tokens(
        model=CLAUDE, system="Be brief.", messages=[{"role": "user", "content": "hello there world"}]
    )
    # The fake counts words plus 3 per message: 2 (system) + 3 + 3.
    assert counted.input_tokens == 8
    sent = fake.received[-1].body
    assert set(sent) == {"model", "system", "messages"}


def test_count_tokens_elsewhere_is_an_estimate_marked_as_such(client: anthropic.Anthropic) -> None:
    counted = client.messages.with_raw_response.count_tokens(
        model="echo4", messages=[{"role": "user", "content": "hi there"}]
    )
    # 3 to prime the answer + 3 for the message + "user" + "hi there" at 4 characters a token (1 + 2).
    assert counted.parse().input_tokens == 9
    assert counted.parse().model_extra == {"estimated": True}
    assert counted.headers["x-calcifer-estimated"] == "true"
