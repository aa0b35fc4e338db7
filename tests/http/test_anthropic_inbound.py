"""The native Anthropic endpoint's pure translation, against golden fixtures of both wire formats."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from calcifer.domain.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    ProviderNotConfigured,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.types import Usage
from calcifer.http.anthropic_inbound import anthropic_error, message_response, openai_body, reasons
from calcifer.http.anthropic_stream import MessageStream

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def as_json(value: object) -> Any:
    """What the client receives (money is an exact JSON number fragment until it is encoded)."""
    return orjson.loads(orjson.dumps(value))


def test_request_golden() -> None:
    assert openai_body(load("inbound_request.json")) == load("inbound_request.openai.json")


def test_request_for_another_provider_drops_what_it_cannot_read(caplog: pytest.LogCaptureFixture) -> None:
    """What Claude Code sends a model it does not know: a `system` message inside `messages`, adaptive
    thinking, `output_config.effort`, `context_management`, a deferred tool and a server tool, thinking
    blocks, server-tool blocks and a tool result with an image."""
    tool_image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA="}}
    payload = {
        "model": "gpt-4o",
        "max_tokens": 32000,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Look.", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a.png"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "ok"}, tool_image],
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                    },
                    {"type": "search_result", "source": "x", "title": "t", "content": []},
                ],
            },
        ],
        "tools": [
            {"name": "Read", "input_schema": {"type": "object"}, "defer_loading": True},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "metadata": {"user_id": '{"device_id":"d","session_id":"s"}'},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "top_k": 5,
    }
    with caplog.at_level(logging.DEBUG, "calcifer.http.messages"):
        body = openai_body(payload)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Look."}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "Read", "arguments": '{"file_path":"a.png"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}},
                {"type": "text", "text": "notes"},
            ],
        },
    ]
    assert body["tools"] == [
        {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}}
    ]
    assert body["user"] == '{"device_id":"d","session_id":"s"}'
    assert "reasoning_effort" not in body and "top_k" not in body  # gpt-4o takes no reasoning setting
    [line] = [r.getMessage() for r in caplog.records]
    for dropped in (
        "context_management",
        "top_k",
        "messages.2.content.0 (thinking)",
        "messages.2.content.2 (server_tool_use)",
        "messages.3.content.1 (web_search_tool_result)",
        "messages.3.content.3 (search_result)",
        "tools.1 (web_search_20250305)",
        "thinking (the target takes no reasoning setting)",
    ):
        assert dropped in line


@pytest.mark.parametrize(
    ("thinking", "effort", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, None, "high"),
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "adaptive"}, "low", "low"),
        ({"type": "adaptive"}, "max", "high"),
        (None, "medium", "medium"),
        ({"type": "disabled"}, None, None),
        (None, None, None),
    ],
)
def test_thinking_becomes_reasoning_effort_for_a_model_that_reasons(
    thinking: object, effort: object, expected: str | None
) -> None:
    payload: dict[str, Any] = {
        "model": "o3",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if thinking is not None:
        payload["thinking"] = thinking
    if effort is not None:
        payload["output_config"] = {"effort": effort}
    assert openai_body(payload, reasoning=True).get("reasoning_effort") == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("o3", True),
        ("o4-mini", True),
        ("gpt-5.1", True),
        ("openrouter/openai/gpt-5", True),
        ("gemini-2.5-flash", True),
        ("gemini-3-pro", True),
        ("gpt-4o", False),
        ("gpt-4.1", False),
        ("gemini-2.0-flash", False),
        ("claude-sonnet-4-5", False),
        ("llama-3-70b", False),
    ],
)
def test_which_models_take_a_reasoning_setting(model: str, expected: bool) -> None:
    assert reasons(model) is expected


def test_request_minimal() -> None:
    payload = {"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert openai_body(payload) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 5,
    }


def test_request_string_system_and_named_tool_choice() -> None:
    payload = {
        "model": "m",
        "max_tokens": 5,
        "system": "Be kind.",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    body = openai_body(payload)
    assert body["messages"][0] == {"role": "system", "content": "Be kind."}  # type: ignore[index]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert "parallel_tool_calls" not in body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"max_tokens": 5, "messages": []}, "model"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": "5", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
            "messages.0.role",
        ),
        ({"model": "m", "max_tokens": 5, "messages": ["hi"]}, "messages.0"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}, "messages.0"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": 5}]}, "messages.0"),
        ({"model": "m", "max_tokens": 5, "messages": [], "system": 5}, "system"),
        ({"model": "m", "max_tokens": 5, "messages": [], "tools": ["x"]}, "tools"),
    ],
)
def test_invalid_requests(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_body(payload)
    assert caught.value.param == param


def test_response_golden() -> None:
    usage = Usage(prompt_tokens=1500, completion_tokens=40, cached_tokens=1024)
    message = message_response(load("inbound_completion.json"), usage, Decimal("0.0023"))
    assert as_json(message) == load("inbound_message.json")


def test_response_cost_is_exact_and_null_when_unpriced() -> None:
    body = load("inbound_completion.json")
    priced = message_response(body, Usage(10, 2), Decimal("0.000000123456789012"))
    assert orjson.dumps(priced["usage"]).endswith(b'"cost":0.000000123456789012}')
    assert as_json(message_response(body, Usage(10, 2), None))["usage"]["cost"] is None


def test_response_usage_splits_cache_writes_out_of_input() -> None:
    usage = Usage(prompt_tokens=3212, completion_tokens=87, cached_tokens=3000, cache_write_tokens=200)
    message = message_response(load("inbound_completion.json"), usage, Decimal(1))
    assert as_json(message)["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 3000,
        "output_tokens": 87,
        "cost": 1,
    }


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_response_stop_reason(finish: str, stop: str) -> None:
    body = {"id": "x", "choices": [{"message": {"content": "hi"}, "finish_reason": finish}]}
    message = message_response(body, None, None)
    assert message["stop_reason"] == stop
    assert message["content"] == [{"type": "text", "text": "hi"}]
    assert message["id"] == "msg_x"


def test_response_keeps_broken_tool_arguments_visible() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": '}}
    body = {"choices": [{"message": {"content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    assert message_response(body, None, None)["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {"_raw_arguments": '{"a": '}}
    ]


def run_stream(chunks: list[dict[str, Any]], usage: Usage | None, cost: Decimal | None) -> list[Any]:
    stream = MessageStream("requested-model")
    events = [event for chunk in chunks for event in stream.feed(chunk)]
    return as_json(events + stream.finish(usage, cost))  # type: ignore[no-any-return]


def test_stream_golden_text_then_two_tool_calls() -> None:
    usage = Usage(prompt_tokens=14, completion_tokens=30, cached_tokens=4)
    assert run_stream(load("inbound_chunks.json"), usage, Decimal("0.000123")) == load("inbound_events.json")


def test_stream_events_accumulate_with_the_anthropic_sdk() -> None:
    from anthropic.lib.streaming._messages import accumulate_event

    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in run_stream(load("inbound_chunks.json"), Usage(14, 30, cached_tokens=4), Decimal("0.5")):
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    assert snapshot.stop_reason == "tool_use"
    assert [b.type for b in snapshot.content] == ["text", "tool_use", "tool_use"]
    assert snapshot.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert (snapshot.usage.input_tokens, snapshot.usage.cache_read_input_tokens) == (10, 4)
    assert snapshot.usage.output_tokens == 30


def test_empty_stream_still_opens_and_closes_the_message() -> None:
    events = run_stream([], None, None)
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0]["message"]["model"] == "requested-model"
    assert events[1]["delta"]["stop_reason"] == "end_turn"


def test_stream_closes_an_open_block_when_cut_without_finish_reason() -> None:
    chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "partial"}}]}
    events = run_stream([chunk], None, None)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (ModelNotFound("nope"), 404, "not_found_error"),
        (ProviderNotConfigured("anthropic", "ANTHROPIC_API_KEY"), 503, "api_error"),
        (UpstreamRateLimited("slow down", status=429), 429, "rate_limit_error"),
        (UpstreamUnavailable("Overloaded", status=503, kind="overloaded_error"), 503, "overloaded_error"),
        (UpstreamUnavailable("boom", status=500), 502, "api_error"),
        (UpstreamTimeout("late", status=504), 504, "timeout_error"),
        (UpstreamRejected("who?", status=401, kind="authentication_error"), 401, "authentication_error"),
        (UpstreamRejected("no", status=403, kind="forbidden"), 403, "permission_error"),
        (GatewayError("internal"), 500, "api_error"),
    ],
)
def test_error_mapping(error: GatewayError, status: int, kind: str) -> None:
    assert anthropic_error(error) == (
        status,
        {"type": "error", "error": {"type": kind, "message": error.message}},
    )


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_response_keeps_tool_arguments_too_deep_to_encode_as_their_text() -> None:
    deep = '{"a": ' + _deep_text(400) + "}"
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": deep}}
    body = {"choices": [{"message": {"content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message: Any = message_response(body, None, None)
    assert message["content"][0]["input"] == {"_raw_arguments": deep}
    orjson.dumps(message)  # the answer can be sent


def test_request_max_tokens_below_one_names_the_anthropic_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_body({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]})
    assert caught.value.param == "max_tokens" and "max_completion_tokens" not in caught.value.message
