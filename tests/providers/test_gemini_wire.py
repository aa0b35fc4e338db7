"""Pure Gemini translation against golden fixtures in Gemini's exact REST shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.types import Usage
from calcifer.providers.gemini_stream import GeminiStream
from calcifer.providers.gemini_wire import finish_reason, from_gemini, to_gemini, usage_from_gemini

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gemini"
CREATED = 1764000000
_GENERATED = re.compile(r"^call_[0-9a-f]{24}")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_events(name: str) -> list[dict[str, Any]]:
    raw = (FIXTURES / name).read_bytes().decode()
    return [json.loads(block[len("data: ") :]) for block in raw.split("\r\n\r\n") if block.strip()]


def normalise_ids(value: Any) -> Any:
    """Replace synthesised tool-call ids (random) by a marker, keeping any signature suffix."""
    if isinstance(value, dict):
        out = {k: normalise_ids(v) for k, v in value.items()}
        if isinstance(out.get("id"), str) and out.get("type") == "function":
            out["id"] = _GENERATED.sub("<generated>", out["id"])
        return out
    if isinstance(value, list):
        return [normalise_ids(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["request_tools", "request_parallel"])
def test_requests_translate_to_gemini(name: str) -> None:
    assert to_gemini(load(f"{name}.openai.json")) == load(f"{name}.gemini.json")


@pytest.mark.parametrize("name", ["response_tool_call", "response_thinking", "response_blocked"])
def test_responses_translate_to_openai(name: str) -> None:
    body, _usage = from_gemini(load(f"{name}.gemini.json"), "requested-model", CREATED)
    assert normalise_ids(body) == load(f"{name}.openai.json")


def test_sample_usage_follows_openai_semantics() -> None:
    # promptTokenCount includes cached content; thoughts are output billed as output.
    _body, usage = from_gemini(load("response_tool_call.gemini.json"), "m", CREATED)
    assert usage == Usage(prompt_tokens=900, completion_tokens=350, cached_tokens=512, reasoning_tokens=150)


def test_tool_use_prompt_tokens_count_as_prompt() -> None:
    usage = usage_from_gemini(
        {"promptTokenCount": 12, "toolUsePromptTokenCount": 3, "candidatesTokenCount": 9}
    )
    assert usage == Usage(prompt_tokens=15, completion_tokens=9)
    assert usage_from_gemini(None) is None


def test_generated_tool_call_ids_are_unique_and_carry_signatures() -> None:
    body, _ = from_gemini(load("response_tool_call.gemini.json"), "m", CREATED)
    again, _ = from_gemini(load("response_tool_call.gemini.json"), "m", CREATED)
    first = body["choices"][0]["message"]["tool_calls"][0]["id"]  # type: ignore[index]
    second = again["choices"][0]["message"]["tool_calls"][0]["id"]  # type: ignore[index]
    assert first != second and _GENERATED.match(first)


def test_signature_round_trips_through_the_tool_call_id() -> None:
    part = {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "YWJj+/=="}
    response = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}
    body, _ = from_gemini(response, "m", CREATED)
    message = body["choices"][0]["message"]  # type: ignore[index]
    follow_up = {
        "messages": [
            {"role": "user", "content": "go"},
            message,
            {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "ok"},
        ]
    }
    contents = to_gemini(follow_up)["contents"]
    assert contents[1]["parts"] == [part]  # type: ignore[index]
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "f"  # type: ignore[index]


@pytest.mark.parametrize(
    ("reason", "tools", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ],
)
def test_finish_reasons(reason: str, tools: bool, expected: str) -> None:
    assert finish_reason(reason, tools) == expected


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_call"])
def test_streams_translate_to_openai_chunks(name: str) -> None:
    stream = GeminiStream("requested-model", CREATED)
    chunks = [c for event in sse_events(f"{name}.sse") for c in stream.feed(event)]
    closing = stream.usage_chunk()
    assert closing is not None and closing.usage is not None
    assert stream.finished
    assert all(c.usage is None for c in chunks)
    assert normalise_ids([c.data for c in [*chunks, closing]]) == load(f"{name}.chunks.json")


def test_stream_usage_is_the_last_cumulative_report() -> None:
    stream = GeminiStream("m", CREATED)
    for event in sse_events("stream_text.sse"):
        stream.feed(event)
    assert stream.usage == Usage(prompt_tokens=8, completion_tokens=26, cached_tokens=4, reasoning_tokens=20)


def test_stream_cut_before_finish_reports_unfinished() -> None:
    stream = GeminiStream("m", CREATED)
    stream.feed(sse_events("stream_text.sse")[0])
    assert not stream.finished


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "system", "content": "only a system prompt"}],
        [{"role": "tool", "tool_call_id": "nobody", "content": "x"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}],
        [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}],
        [{"role": "wizard", "content": "x"}],
    ],
)
def test_untranslatable_requests_are_client_errors(messages: list[object]) -> None:
    with pytest.raises(InvalidRequest):
        to_gemini({"messages": messages})


def test_plain_urls_become_file_data_and_audio_becomes_inline_data() -> None:
    request = to_gemini(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    ],
                }
            ],
            "tool_choice": "none",
        }
    )
    assert request["contents"] == [
        {
            "role": "user",
            "parts": [
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            ],
        }
    ]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert "generationConfig" not in request


def test_max_completion_tokens_wins_over_max_tokens_and_null_is_ignored() -> None:
    messages = [{"role": "user", "content": "hi"}]
    both = to_gemini({"messages": messages, "max_completion_tokens": 10, "max_tokens": 99})
    fallback = to_gemini({"messages": messages, "max_completion_tokens": None, "max_tokens": 99})
    assert both["generationConfig"] == {"maxOutputTokens": 10}
    assert fallback["generationConfig"] == {"maxOutputTokens": 99}


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "low"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal"}),
        ("gemini-3-pro-preview", "none", None),
        ("gemini-2.5-flash", "extreme", None),
    ],
)
def test_reasoning_effort_becomes_a_thinking_config(model: str, effort: str, expected: object) -> None:
    request = to_gemini({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort}, model)
    config = request.get("generationConfig", {})
    assert isinstance(config, dict) and config.get("thinkingConfig") == expected


def test_a_native_thinking_config_wins_over_reasoning_effort() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "high",
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 128}},
    }
    assert to_gemini(body, "gemini-2.5-flash")["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 128}
    }


def test_tool_arguments_too_deep_to_send_on_are_a_client_error_and_deep_results_stay_text() -> None:
    deep = "[" * 300 + "]" * 300
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep}}
    asked = [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]
    with pytest.raises(InvalidRequest, match="nest more than"):
        to_gemini({"messages": asked})
    fine = {**call, "function": {"name": "f", "arguments": "{}"}}
    answered = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [fine]},
        {"role": "tool", "tool_call_id": "c1", "content": deep},
    ]
    request: Any = to_gemini({"messages": answered})
    parts = [part for content in request["contents"] for part in content["parts"]]
    result = next(part["functionResponse"] for part in parts if "functionResponse" in part)
    assert result["response"] == {"output": deep}
    orjson.dumps(request)  # what is sent can be encoded
