"""Pure OpenAI ↔ Anthropic translation, against golden fixtures in Anthropic's exact wire format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calcifer.domain.errors import InvalidRequest, UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from calcifer.domain.types import Usage
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import (
    anthropic_error_fields,
    from_anthropic,
    max_output_from_models,
    to_anthropic,
    usage_from_anthropic,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
CREATED = 1764000000


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_data(name: str) -> list[dict[str, Any]]:
    """The JSON data of each event of a captured SSE file, checking `event:` names match `type`."""
    events = []
    for block in (FIXTURES / name).read_text().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    return events


def chunks_of(name: str) -> list[dict[str, Any]]:
    chunker = AnthropicChunker(CREATED)
    out = []
    for event in sse_data(name):
        for chunk in chunker.feed(event):
            out.append(chunk.data)
    assert chunker.finished
    return out


def test_request_golden() -> None:
    body = load("openai_request.json")
    assert to_anthropic(body, "claude-sonnet-4-5", 4096, stream=True) == load("anthropic_request.json")


def test_request_minimal_uses_default_max_tokens_and_no_optional_fields() -> None:
    body = {"model": "alias", "messages": [{"role": "user", "content": "hi"}]}
    assert to_anthropic(body, "claude-haiku-4-5", 64000, stream=False) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_tool_error_flag_and_empty_turns() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": ""},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "failed", "is_error": True},
        ]
    }
    assert to_anthropic(body, "m", 1, stream=False)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "go"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "failed", "is_error": True}],
        },
    ]


def test_request_max_tokens_falls_back_to_deprecated_field() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 77}
    assert to_anthropic(body, "m", 4096, stream=False)["max_tokens"] == 77


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ("none", False, {"type": "none"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, True, None),
    ],
)
def test_tool_choice(choice: str | None, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [tool]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_anthropic(body, "m", 1, stream=False).get("tool_choice") == expected


def test_response_format_json_schema_becomes_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    wire = to_anthropic(body, "m", 1, stream=False)
    assert wire["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_pdf_file_part_becomes_document() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    body = {"messages": [{"role": "user", "content": [part]}]}
    blocks = to_anthropic(body, "m", 1, stream=False)["messages"][0]["content"]  # type: ignore[index]
    assert blocks == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        }
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls",
        ),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "custom", "custom": {"name": "g"}}],
            },
            "tools",
        ),
    ],
)
def test_untranslatable_requests_are_invalid(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(body, "m", 1, stream=False)
    assert caught.value.param == param


def test_response_golden() -> None:
    response = from_anthropic(load("message_tool_use.json"), CREATED)
    assert response.body == load("completion_tool_use.json")
    assert response.usage == Usage(
        prompt_tokens=3050,
        completion_tokens=120,
        cached_tokens=2000,
        cache_write_tokens=1000,
        reasoning_tokens=40,
    )
    assert response.provider == "anthropic"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "length"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
    ],
)
def test_finish_reason(stop_reason: str, finish_reason: str) -> None:
    message = {
        "id": "msg_1",
        "model": "m",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": stop_reason,
    }
    choice = from_anthropic(message, CREATED).body["choices"][0]  # type: ignore[index]
    assert choice["finish_reason"] == finish_reason
    assert choice["message"]["content"] == "x"
    assert "tool_calls" not in choice["message"]


def test_usage_prompt_includes_cache_reads_and_writes() -> None:
    raw = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 500,
        "cache_read_input_tokens": 7000,
        "output_tokens": 9,
    }
    usage = usage_from_anthropic(raw)
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens) == (7503, 7000, 500)
    assert (usage.completion_tokens, usage.total_tokens) == (9, 7512)


def test_usage_without_cache_fields() -> None:
    assert usage_from_anthropic({"input_tokens": 4, "output_tokens": 2}) == Usage(4, 2)


def test_stream_tool_use_golden() -> None:
    assert chunks_of("stream_tool_use.sse") == load("stream_tool_use.chunks.json")


def test_stream_thinking_and_cache_golden() -> None:
    assert chunks_of("stream_thinking_cached.sse") == load("stream_thinking_cached.chunks.json")


def test_stream_tool_arguments_join_to_valid_json() -> None:
    arguments = "".join(
        call["function"]["arguments"]
        for chunk in chunks_of("stream_tool_use.sse")
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"location": "Paris"}


def test_stream_usage_chunk_carries_domain_usage() -> None:
    chunker = AnthropicChunker(CREATED)
    last = [c for event in sse_data("stream_thinking_cached.sse") for c in chunker.feed(event)][-1]
    assert last.usage == Usage(3212, 87, cached_tokens=3000, cache_write_tokens=200, reasoning_tokens=30)


@pytest.mark.parametrize(
    ("kind", "error_type", "status"),
    [
        ("overloaded_error", UpstreamUnavailable, 503),
        ("api_error", UpstreamUnavailable, 500),
        ("rate_limit_error", UpstreamRateLimited, 429),
        ("invalid_request_error", UpstreamRejected, 400),
    ],
)
def test_stream_error_event_raises_typed_error(kind: str, error_type: type[Exception], status: int) -> None:
    chunker = AnthropicChunker(CREATED)
    chunker.feed(sse_data("stream_tool_use.sse")[0])
    with pytest.raises(error_type) as caught:
        chunker.feed({"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert caught.value.kind == kind  # type: ignore[attr-defined]
    assert caught.value.message == "Overloaded"  # type: ignore[attr-defined]


def test_error_fields() -> None:
    raw = (FIXTURES / "error_overloaded.json").read_bytes()
    assert anthropic_error_fields(raw) == ("Overloaded", "overloaded_error", None, None)
    assert anthropic_error_fields(b"<html>bad gateway</html>") is None
    assert anthropic_error_fields(b'{"error": "nope"}') is None


def test_max_output_from_models_page() -> None:
    page = {
        "data": [
            {"type": "model", "id": "claude-sonnet-4-5-20250929", "max_tokens": 64000},
            {"type": "model", "id": "claude-x-20250101", "max_tokens": 8192},
            {"type": "model", "id": "claude-x", "max_tokens": 4000},
            {"type": "model", "id": "claude-unknown-limit", "max_tokens": None},
        ],
        "has_more": False,
    }
    assert max_output_from_models(page) == {
        "claude-sonnet-4-5-20250929": 64000,
        "claude-sonnet-4-5": 64000,
        "claude-x-20250101": 8192,
        "claude-x": 4000,
    }


def test_tool_arguments_too_deep_to_send_on_are_a_client_error() -> None:
    deep = "[" * 300 + "]" * 300
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep}}
    body = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]}
    with pytest.raises(InvalidRequest, match="nested more than"):
        to_anthropic(body, "claude-x", 1024, False)
