"""Pure translation between OpenAI's chat-completions shape and Anthropic's Messages API.

`to_anthropic` turns an OpenAI request body into a Messages request; `from_anthropic` turns a `message`
into a `chat.completion`; `AnthropicChunker` turns the Messages stream's events into
`chat.completion.chunk`s. No I/O here: the shell in `anthropic.py` sends and receives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.nesting import MAX_DEPTH, too_deep
from calcifer.domain.types import ChatResponse, JSONObject, Usage
from calcifer.providers._http import ErrorFields

# Anthropic's `stop_reason` → OpenAI's `finish_reason`; anything else is "stop".
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "length",
    "model_context_window_exceeded": "length",
    "compaction": "length",
}
_TOOL_CHOICES: dict[str, JSONObject] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


def to_anthropic(body: Mapping[str, object], model: str, default_max_tokens: int, stream: bool) -> JSONObject:
    """The Messages request for an OpenAI chat-completions `body` (see PROVIDER_FACTS §2.1)."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Anthropic models return one choice: 'n' must be 1.", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be an array of message objects.", param="messages")
    system, turns = _conversation(messages)
    request: JSONObject = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens)}
    if system:
        request["system"] = system
    request["messages"] = turns
    stop = body.get("stop")
    if isinstance(stop, str):
        request["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        request["stop_sequences"] = stop
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            request[name] = body[name]
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        request["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls") is False)
        if choice is not None:
            request["tool_choice"] = choice
    user = body.get("user")
    if isinstance(user, str) and user:
        request["metadata"] = {"user_id": user}
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        request["output_config"] = {"format": output_format}
    if stream:
        request["stream"] = True
    return request


def _max_tokens(body: Mapping[str, object], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return default


def _conversation(messages: list[object]) -> tuple[list[JSONObject], list[JSONObject]]:
    """System blocks (hoisted from system/developer messages) and the alternating user/assistant turns."""
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), i))
            continue
        if role == "user":
            role, blocks = "user", _user_blocks(message.get("content"), i)
        elif role == "assistant":
            blocks = _assistant_blocks(message, i)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, i)]
        else:
            raise InvalidRequest(
                f"'messages[{i}].role' {role!r} cannot be sent to Anthropic.", param=f"messages[{i}].role"
            )
        if not blocks:
            continue  # Anthropic refuses empty turns (e.g. an assistant message with content "")
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            assert isinstance(previous, list)
            previous.extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _cache(part: Mapping[str, object], block: JSONObject) -> JSONObject:
    """Carry a content part's `cache_control` (the convention OpenRouter and LiteLLM also accept)."""
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: object, i: int) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise InvalidRequest(f"'messages[{i}].content' must be a string or an array.", param=f"messages[{i}]")
    blocks: list[JSONObject] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in ("text", "refusal"):
            text = part.get("text", part.get("refusal"))
            if isinstance(text, str) and text:
                blocks.append(_cache(part, {"type": "text", "text": text}))
    return blocks


def _user_blocks(content: object, i: int) -> list[JSONObject]:
    if not isinstance(content, list):
        return _text_blocks(content, i)
    blocks: list[JSONObject] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part, Mapping):
            blocks.append(_cache(part, {"type": "text", "text": part.get("text", "")}))
        elif kind == "image_url" and isinstance(part, Mapping):
            blocks.append(_cache(part, {"type": "image", "source": _image_source(part.get("image_url"), i)}))
        elif kind == "file" and isinstance(part, Mapping):
            blocks.append(_cache(part, {"type": "document", "source": _file_source(part.get("file"), i)}))
        else:
            raise InvalidRequest(
                f"Content part of type {kind!r} in 'messages[{i}]' cannot be sent to Anthropic.",
                param=f"messages[{i}].content",
            )
    return blocks


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        return None
    return media_type, data


def _image_source(image: object, i: int) -> JSONObject:
    url = image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"An image part in 'messages[{i}]' has no url.", param=f"messages[{i}].content")
    decoded = _data_url(url)
    if decoded is not None:
        return {"type": "base64", "media_type": decoded[0], "data": decoded[1]}
    if url.startswith("data:"):
        raise InvalidRequest(f"An image data URL in 'messages[{i}]' is not base64.", param=f"messages[{i}]")
    return {"type": "url", "url": url}


def _file_source(file: object, i: int) -> JSONObject:
    data = file.get("file_data") if isinstance(file, Mapping) else None
    decoded = _data_url(data) if isinstance(data, str) else None
    if decoded is None:
        raise InvalidRequest(
            f"A file part in 'messages[{i}]' must carry 'file_data' as a base64 data URL for Anthropic.",
            param=f"messages[{i}].content",
        )
    return {"type": "base64", "media_type": decoded[0], "data": decoded[1]}


def _assistant_blocks(message: Mapping[str, object], i: int) -> list[JSONObject]:
    blocks = _text_blocks(message.get("content"), i)
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(call, Mapping) or not isinstance(function, Mapping):
            raise InvalidRequest(f"A tool call in 'messages[{i}]' is malformed.", param=f"messages[{i}]")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                f"The arguments of tool call {call.get('id')!r} in 'messages[{i}]' are not valid JSON.",
                param=f"messages[{i}].tool_calls",
            ) from None
        if too_deep(parsed, arguments if isinstance(arguments, str) else None):
            raise InvalidRequest(
                f"The arguments of tool call {call.get('id')!r} in 'messages[{i}]' are nested more than "
                f"{MAX_DEPTH} levels deep.",
                param=f"messages[{i}].tool_calls",
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}
        )
    return blocks


def _tool_result(message: Mapping[str, object], i: int) -> JSONObject:
    content = message.get("content")
    block: JSONObject = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    if isinstance(content, str):
        block["content"] = content
    else:
        block["content"] = _text_blocks(content, i)
    if message.get("is_error") is True:  # set by the native Anthropic endpoint; not OpenAI's
        block["is_error"] = True
    return _cache(message, block)


def _tool(tool: object, i: int) -> JSONObject:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(tool, Mapping) or tool.get("type") != "function" or not isinstance(function, Mapping):
        raise InvalidRequest(f"Only function tools can be sent to Anthropic ('tools[{i}]').", param="tools")
    parameters = function.get("parameters")
    out: JSONObject = {"name": function.get("name")}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["input_schema"] = (
        parameters if isinstance(parameters, Mapping) else {"type": "object", "properties": {}}
    )
    return _cache(tool, out)


def _tool_choice(choice: object, serial: bool) -> JSONObject | None:
    if isinstance(choice, str):
        out = dict(_TOOL_CHOICES.get(choice, {"type": "auto"}))
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        function = choice["function"]
        assert isinstance(function, Mapping)
        out = {"type": "tool", "name": function.get("name")}
    elif serial:
        out = {"type": "auto"}
    else:
        return None
    if serial and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _output_format(response_format: object) -> JSONObject | None:
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return {"type": "json_schema", "schema": schema} if isinstance(schema, Mapping) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_anthropic(raw: Mapping[str, object]) -> Usage:
    """Anthropic's usage as domain `Usage`: its `input_tokens` excludes cache reads and writes."""
    read = _count(raw.get("cache_read_input_tokens"))
    written = _count(raw.get("cache_creation_input_tokens"))
    details = raw.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, Mapping) else 0
    return Usage(
        prompt_tokens=_count(raw.get("input_tokens")) + read + written,
        completion_tokens=_count(raw.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=thinking,
    )


def usage_json(usage: Usage) -> JSONObject:
    """OpenAI's usage object for domain `Usage`, with cache reads and writes in `prompt_tokens_details`."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _arguments(value: object) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


def from_anthropic(message: Mapping[str, object], created: int, provider: str = "anthropic") -> ChatResponse:
    """The `chat.completion` for an Anthropic `message` (thinking blocks are not carried over)."""
    texts: list[str] = []
    calls: list[JSONObject] = []
    content = message.get("content")
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(str(block["text"]))
        elif block.get("type") == "tool_use":
            function = {"name": block.get("name"), "arguments": _arguments(block.get("input"))}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    reply: JSONObject = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    raw_usage = message.get("usage")
    usage = usage_from_anthropic(raw_usage) if isinstance(raw_usage, Mapping) else None
    body: JSONObject = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(str(message.get("stop_reason")), "stop"),
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage_json(usage)
    return ChatResponse(body=body, usage=usage, provider=provider)


def anthropic_error_fields(body: bytes) -> ErrorFields | None:
    """Message and type of Anthropic's error body `{"type":"error","error":{"type","message"}}`."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    kind = error.get("type")
    return error["message"], kind if isinstance(kind, str) else None, None, None


_DATED = re.compile(r"-\d{8}$")


def max_output_from_models(page: Mapping[str, object]) -> dict[str, int]:
    """Each model's maximum output (`max_tokens`) from a Models API page, under its id and, for a dated
    id such as `claude-sonnet-4-5-20250929`, under its undated alias too (unless that is listed itself)."""
    found: dict[str, int] = {}
    aliases: dict[str, int] = {}
    data = page.get("data")
    for model in data if isinstance(data, list) else []:
        if not isinstance(model, Mapping):
            continue
        model_id, limit = model.get("id"), model.get("max_tokens")
        if isinstance(model_id, str) and isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            found[model_id] = limit
            aliases.setdefault(_DATED.sub("", model_id), limit)
    return {**aliases, **found}
