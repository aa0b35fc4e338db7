"""The native Anthropic endpoint's translation: Messages API in, the gateway's OpenAI shape inside.

`openai_body` turns a Messages request into a chat-completions body; `message_response` turns a
`chat.completion` into a `message` (with `usage.cost`); `anthropic_error` gives Anthropic's error
status and body. Streams are translated by `anthropic_stream.MessageStream`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import orjson

from calcifer.domain.errors import GatewayError, InvalidRequest, ProviderError
from calcifer.domain.types import JSONObject, Usage
from calcifer.http.errors import status_of
from calcifer.http.wire import money

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# Anthropic's error types (docs.claude.com/en/api/errors), and the type each status has.
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    }
)
_TYPE_OF_STATUS = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _field(payload: Mapping[str, object], name: str, kind: type | tuple[type, ...], what: str) -> object:
    value = payload.get(name)
    if value is None:
        raise InvalidRequest(f"{name}: Field required", param=name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest(f"{name}: Input should be {what}", param=name)
    return value


def openai_body(payload: Mapping[str, object], *, anthropic_upstream: bool = False) -> JSONObject:
    """The chat-completions body for a Messages request (PROVIDER_FACTS §2.1, read backwards).

    With `anthropic_upstream`, Anthropic-only hints the Anthropic provider understands are kept
    (`cache_control` on content, tools and tool results, `is_error`, `top_k`); other upstreams would
    reject them.
    """
    model = _field(payload, "model", str, "a valid string")
    max_tokens = _field(payload, "max_tokens", int, "a valid integer")
    messages = _field(payload, "messages", list, "a valid list")
    assert isinstance(messages, list)
    convert = _Converter(anthropic_upstream)
    out: list[JSONObject] = convert.system(payload.get("system"))
    for i, message in enumerate(messages):
        out.extend(convert.message(message, i))
    body: JSONObject = {"model": model, "messages": out, "max_completion_tokens": max_tokens}
    stop = payload.get("stop_sequences")
    if isinstance(stop, list) and stop:
        body["stop"] = stop
    names = ("temperature", "top_p", "top_k") if anthropic_upstream else ("temperature", "top_p")
    for name in names:
        if payload.get(name) is not None:
            body[name] = payload[name]
    tools = payload.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = [convert.tool(tool, i) for i, tool in enumerate(tools)]
        _tool_choice(payload.get("tool_choice"), body)
    metadata = payload.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if isinstance(user, str) and user:
        body["user"] = user
    config = payload.get("output_config")
    output_format = config.get("format") if isinstance(config, Mapping) else None
    if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
        schema = {"name": "output", "schema": output_format.get("schema")}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    if payload.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _tool_choice(choice: object, body: JSONObject) -> None:
    if not isinstance(choice, Mapping):
        return
    kind = choice.get("type")
    if kind == "tool":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(kind, str) and kind in _TOOL_CHOICES:
        body["tool_choice"] = _TOOL_CHOICES[kind]
    if choice.get("disable_parallel_tool_use") is True:
        body["parallel_tool_calls"] = False


class _Converter:
    def __init__(self, anthropic_upstream: bool) -> None:
        self._anthropic = anthropic_upstream

    def _cache(self, block: Mapping[str, object], part: JSONObject) -> JSONObject:
        if self._anthropic and isinstance(block.get("cache_control"), Mapping):
            part["cache_control"] = block["cache_control"]
        return part

    def _text_parts(self, content: object, where: str) -> list[JSONObject]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{where}: Input should be a valid string or list", param=where)
        return [
            self._cache(b, {"type": "text", "text": b.get("text")})
            for b in content
            if isinstance(b, Mapping) and b.get("type") == "text"
        ]

    def system(self, system: object) -> list[JSONObject]:
        if not system:
            return []
        if isinstance(system, str):
            return [{"role": "system", "content": system}]
        return [{"role": "system", "content": self._text_parts(system, "system")}]

    def message(self, message: object, i: int) -> list[JSONObject]:
        where = f"messages.{i}"
        if not isinstance(message, Mapping):
            raise InvalidRequest(f"{where}: Input should be a valid dictionary", param=where)
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            raise InvalidRequest(
                f"{where}.role: Input should be 'user' or 'assistant'", param=f"{where}.role"
            )
        if isinstance(content, str):
            return [{"role": role, "content": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{where}.content: Input should be a valid string or list", param=where)
        return self._assistant(content) if role == "assistant" else self._user(content, where)

    def _assistant(self, blocks: list[object]) -> list[JSONObject]:
        texts: list[str] = []
        calls: list[JSONObject] = []
        for block in blocks:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                texts.append(str(block["text"]))
            elif block.get("type") == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                function = {"name": block.get("name"), "arguments": arguments}
                calls.append({"id": block.get("id"), "type": "function", "function": function})
        message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        return [message]

    def _user(self, blocks: list[object], where: str) -> list[JSONObject]:
        """Tool results become `tool` messages, placed before the rest of the turn."""
        results: list[JSONObject] = []
        parts: list[JSONObject] = []
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, Mapping) else None
            if not isinstance(block, Mapping):
                continue
            if kind == "tool_result":
                text = "".join(str(p["text"]) for p in self._text_parts(block.get("content") or "", where))
                result: JSONObject = {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": text,
                }
                if self._anthropic and block.get("is_error") is True:
                    result["is_error"] = True
                results.append(self._cache(block, result))
            elif kind == "text":
                parts.append(self._cache(block, {"type": "text", "text": block.get("text")}))
            elif kind in ("image", "document"):
                parts.append(
                    self._cache(block, _media_part(kind, block.get("source"), f"{where}.content.{j}"))
                )
            else:
                raise InvalidRequest(
                    f"{where}.content.{j}: blocks of type {kind!r} are not supported by this gateway",
                    param=f"{where}.content.{j}",
                )
        return results + ([{"role": "user", "content": parts}] if parts else [])

    def tool(self, tool: object, i: int) -> JSONObject:
        if not isinstance(tool, Mapping) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, Mapping) else None
            raise InvalidRequest(
                f"tools.{i}: server tool {kind!r} is not supported by this gateway", param="tools"
            )
        function: JSONObject = {"name": tool.get("name")}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        return self._cache(tool, {"type": "function", "function": function})


def _media_part(kind: str, source: object, where: str) -> JSONObject:
    if isinstance(source, Mapping) and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        if kind == "document":
            return {"type": "file", "file": {"filename": "document.pdf", "file_data": url}}
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "image" and isinstance(source, Mapping) and source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": source.get("url")}}
    raise InvalidRequest(f"{where}.source: this {kind} source is not supported by this gateway", param=where)


def usage_body(usage: Usage | None, cost: Decimal | None) -> JSONObject:
    """Anthropic's usage, whose `input_tokens` excludes cache reads and writes, plus `cost` in USD."""
    usage = usage or Usage(0, 0)
    plain = max(0, usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": plain,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
        "cost": money(cost),
    }


def message_id(chat_id: object) -> str:
    text = chat_id if isinstance(chat_id, str) and chat_id else "calcifer"
    return text if text.startswith("msg_") else f"msg_{text}"


def message_response(body: Mapping[str, object], usage: Usage | None, cost: Decimal | None) -> JSONObject:
    """The Messages API `message` for a `chat.completion` (its first choice)."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    reply = choice.get("message")
    content: list[JSONObject] = []
    if isinstance(reply, Mapping):
        if isinstance(reply.get("content"), str) and reply["content"]:
            content.append({"type": "text", "text": reply["content"]})
        calls = reply.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(call, Mapping) and isinstance(function, Mapping):
                block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
                content.append({**block, "input": _tool_input(function.get("arguments"))})
    return {
        "id": message_id(body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": STOP_REASONS.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": usage_body(usage, cost),
    }


def _tool_input(arguments: object) -> object:
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}  # the model wrote broken JSON: keep it visible
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def anthropic_error(error: GatewayError) -> tuple[int, JSONObject]:
    """Anthropic's status and body `{"type":"error","error":{"type","message"}}` for a domain error.

    The status is the OpenAI routes' (one table, `http/errors.py`), except that an upstream's
    `overloaded_error` (Anthropic's 529) is a 503.
    """
    status = status_of(error)
    if isinstance(error, ProviderError) and error.kind == "overloaded_error":
        status = 503
    kind = _TYPE_OF_STATUS.get(status) or (error.kind if error.kind in ERROR_TYPES else None)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    return status, {"type": "error", "error": {"type": kind, "message": error.message}}


def sse_frame(event: Mapping[str, object]) -> bytes:
    """One Messages stream event as SSE: the event name is its `type`."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
