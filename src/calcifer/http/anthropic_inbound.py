"""`/v1/messages` for providers that do not speak the Messages API: its translation to and from the
gateway's OpenAI shape (a Claude deployment gets the client's own call instead: `anthropic_native`).

`openai_body` turns a Messages request into a chat-completions body; `message_response` turns a
`chat.completion` into a `message` (with `usage.cost`); `anthropic_error` gives Anthropic's error
status and body. Streams are translated by `anthropic_stream.MessageStream`. Pure: no I/O (what a
translation drops is named in a debug log line).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal

import orjson

from calcifer.domain.errors import GatewayError, InvalidRequest, ProviderError
from calcifer.domain.nesting import too_deep
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
_EFFORTS = {"low": "low", "medium": "medium"}  # Anthropic's `high`, `xhigh` and `max` are OpenAI's high
_REASONING = re.compile(r"^(o\d|gpt-5|gemini-(2\.5|[3-9]))")
# The request fields `openai_body` translates; others are dropped (and named in the debug log).
_TRANSLATED = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "metadata",
        "output_config",
        "thinking",
        "stream",
    }
)
_log = logging.getLogger("calcifer.http.messages")
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


def reasons(model: str) -> bool:
    """Whether `model` takes a reasoning setting (`reasoning_effort`, Gemini's thinking budget): OpenAI's
    o-series and GPT-5 models, Gemini 2.5 and later. Judged by name (the catalogue does not say)."""
    return _REASONING.match(model.rsplit("/", 1)[-1]) is not None


def openai_body(payload: Mapping[str, object], *, reasoning: bool = False) -> JSONObject:
    """The chat-completions body for a Messages request (PROVIDER_FACTS §2.1, read backwards), for an
    upstream that does not speak the Messages API.

    What has no counterpart there is dropped, with a debug log: thinking blocks in earlier turns,
    server tools and their results, `cache_control`, `context_management`, `top_k`, ... `thinking` and
    `output_config.effort` become `reasoning_effort` when `reasoning` (the target takes one).
    """
    model = _field(payload, "model", str, "a valid string")
    max_tokens = _field(payload, "max_tokens", int, "a valid integer")
    if isinstance(max_tokens, int) and max_tokens < 1:  # said of the field the client sent
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1", param="max_tokens")
    messages = _field(payload, "messages", list, "a valid list")
    assert isinstance(messages, list)
    convert = _Converter()
    out: list[JSONObject] = convert.system(payload.get("system"))
    for i, message in enumerate(messages):
        out.extend(convert.message(message, i))
    body: JSONObject = {"model": model, "messages": out, "max_completion_tokens": max_tokens}
    stop = payload.get("stop_sequences")
    if isinstance(stop, list) and stop:
        body["stop"] = stop
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    tools = payload.get("tools")
    if isinstance(tools, list) and tools:
        functions = [tool for tool in (convert.tool(tool, i) for i, tool in enumerate(tools)) if tool]
        if functions:
            body["tools"] = functions
            _tool_choice(payload.get("tool_choice"), body)
    metadata = payload.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if isinstance(user, str) and user:
        body["user"] = user
    config = payload.get("output_config")
    config = config if isinstance(config, Mapping) else {}
    output_format = config.get("format")
    if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
        schema = {"name": "output", "schema": output_format.get("schema")}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    effort = _effort(payload.get("thinking"), config.get("effort")) if reasoning else None
    if effort is not None:
        body["reasoning_effort"] = effort
    if payload.get("stream") is True:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if _log.isEnabledFor(logging.DEBUG):
        dropped = sorted(set(payload) - _TRANSLATED) + convert.dropped
        if not reasoning and (payload.get("thinking") or config.get("effort")):
            dropped.append("thinking (the target takes no reasoning setting)")
        if dropped:
            _log.debug("/v1/messages for %s: not translated: %s", model, ", ".join(dropped))
    return body


def _effort(thinking: object, effort: object) -> str | None:
    """The `reasoning_effort` for Anthropic's `output_config.effort`, else for its `thinking` budget."""
    if isinstance(effort, str) and effort:
        return _EFFORTS.get(effort, "high")
    if not isinstance(thinking, Mapping) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "medium"
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


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
    def __init__(self) -> None:
        self.dropped: list[str] = []  # what had no counterpart, for the debug log

    def _drop(self, what: str) -> None:
        self.dropped.append(what)

    def _text_parts(self, content: object, where: str) -> list[JSONObject]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{where}: Input should be a valid string or list", param=where)
        return [
            {"type": "text", "text": b.get("text")}
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
        if role not in ("user", "assistant", "system"):
            raise InvalidRequest(
                f"{where}.role: Input should be 'user', 'assistant' or 'system'", param=f"{where}.role"
            )
        if isinstance(content, str):
            return [{"role": role, "content": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{where}.content: Input should be a valid string or list", param=where)
        if role == "system":  # Claude Code puts one after the first user turn for models it does not know
            return [{"role": "system", "content": self._text_parts(content, where)}]
        return self._assistant(content, where) if role == "assistant" else self._user(content, where)

    def _assistant(self, blocks: list[object], where: str) -> list[JSONObject]:
        texts: list[str] = []
        calls: list[JSONObject] = []
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, Mapping) else None
            if not isinstance(block, Mapping):
                continue
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(str(block["text"]))
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                function = {"name": block.get("name"), "arguments": arguments}
                calls.append({"id": block.get("id"), "type": "function", "function": function})
            else:  # thinking (the other model cannot read it), server tools and their results
                self._drop(f"{where}.content.{j} ({kind})")
        message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        return [message]

    def _user(self, blocks: list[object], where: str) -> list[JSONObject]:
        """Tool results become `tool` messages, placed before the rest of the turn (an image a tool
        returned joins the turn's own parts: a `tool` message holds only text)."""
        results: list[JSONObject] = []
        parts: list[JSONObject] = []
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, Mapping) else None
            if not isinstance(block, Mapping):
                continue
            at = f"{where}.content.{j}"
            if kind == "tool_result":
                texts: list[str] = []
                content = block.get("content") or ""
                for k, part in enumerate([content] if isinstance(content, str) else content):
                    if isinstance(part, str):
                        texts.append(part)
                    elif isinstance(part, Mapping):
                        self._part(part, f"{at}.content.{k}", parts, texts)
                results.append(
                    {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": "".join(texts)}
                )
            else:
                self._part(block, at, parts)
        return results + ([{"role": "user", "content": parts}] if parts else [])

    def _part(
        self, block: Mapping[str, object], at: str, parts: list[JSONObject], texts: list[str] | None = None
    ) -> None:
        """One content block as a chat content part (the text of a tool result goes to `texts`)."""
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            if texts is not None:
                texts.append(str(block["text"]))
            else:
                parts.append({"type": "text", "text": block["text"]})
            return
        part = _media_part(kind, block.get("source")) if kind in ("image", "document") else None
        if part is None:
            self._drop(f"{at} ({kind})")
        elif texts is not None and part.get("type") == "text":
            texts.append(str(part["text"]))
        else:
            parts.append(part)

    def tool(self, tool: object, i: int) -> JSONObject | None:
        """A client tool as a function (its `defer_loading`, `cache_control`, ... dropped); a server tool
        (`web_search_...`, `bash_...`: one the other provider cannot run) is left out."""
        if not isinstance(tool, Mapping):
            raise InvalidRequest(f"tools.{i}: Input should be a valid dictionary", param="tools")
        if tool.get("type") not in (None, "custom"):
            self._drop(f"tools.{i} ({tool.get('type')})")
            return None
        function: JSONObject = {"name": tool.get("name")}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        return {"type": "function", "function": function}


def _media_part(kind: object, source: object) -> JSONObject | None:
    """An image or document block as a chat content part (None for a source chat cannot carry)."""
    kind_of = source.get("type") if isinstance(source, Mapping) else None
    if isinstance(source, Mapping) and kind_of == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        if kind == "document":
            return {"type": "file", "file": {"filename": "document.pdf", "file_data": url}}
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(source, Mapping) and kind_of == "url" and kind == "image":
        return {"type": "image_url", "image_url": {"url": source.get("url")}}
    if isinstance(source, Mapping) and kind_of == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}  # a plain-text document
    return None


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
    if too_deep(parsed, arguments):  # too deep to encode again: kept as the model wrote it
        return {"_raw_arguments": arguments}
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
