"""The Responses API's requests, for providers that do not speak it: a `/v1/responses` request becomes
the gateway's chat-completions body, and the fields a response object echoes are kept beside it.

What a chat model can do is translated: input items (`message` with text, image and file parts in the
four roles, `function_call`, `function_call_output`), `instructions`, function tools, `tool_choice`,
`parallel_tool_calls`, `text.format`, `reasoning.effort`, `max_output_tokens`, `temperature`, `top_p`,
`metadata` and `user`. What it cannot is left out of what the provider is sent, and of the response:
`reasoning` items, hosted tools (`web_search`, `file_search`, ...) and tool kinds the gateway does not
know (`namespace`, `custom`). Fields that only steer OpenAI itself (`include`, `prompt_cache_key`,
`client_metadata`, `store`, `service_tier`, ...) are not sent. Pure: no I/O.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.types import JSONObject

_log = logging.getLogger("calcifer")
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
_ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


@dataclass(frozen=True, slots=True)
class Translated:
    """A Responses request read: the chat-completions `body` for translated providers, the `input`
    items it added (normalised, each with an `id`), and (`echo()`) the request's fields a response
    object repeats, with only the tools that were sent. (Built only when a translated provider answers.)"""

    body: JSONObject
    payload: Mapping[str, object]
    items: tuple[JSONObject, ...]
    tools: tuple[JSONObject, ...]
    stream: bool
    store: bool
    previous_id: str | None

    @property
    def input(self) -> tuple[JSONObject, ...]:
        return with_ids(self.items)

    def echo(self) -> JSONObject:
        return _echo(
            self.payload, str(self.body["model"]), list(self.tools), self.body.get("tool_choice", "auto")
        )


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def input_items(payload: Mapping[str, object]) -> list[JSONObject]:
    """The request's `input` as a list of items (a string is one user message)."""
    raw = payload.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise InvalidRequest("'input' must be a string or an array of input items.", param="input")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"'input[{i}]' must be an object.", param=f"input[{i}]")
    return raw


def with_ids(items: Sequence[JSONObject]) -> tuple[JSONObject, ...]:
    """The items as stored and listed: each with a type, an id and a status, as OpenAI lists them."""
    kept: list[JSONObject] = []
    for item in items:
        kind = str(item.get("type") or "message")
        if kind == "reasoning":
            continue
        typed: JSONObject = {"type": kind, **item}
        if not isinstance(typed.get("id"), str):
            typed["id"] = new_id(_ITEM_PREFIX.get(kind, "item"))
        typed.setdefault("status", "completed")
        kept.append(typed)
    return tuple(kept)


def translate(payload: Mapping[str, object], history: Sequence[JSONObject] = ()) -> Translated:
    """Read a Responses request; `history` is the items of the responses it continues, oldest first."""
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    items = input_items(payload)
    messages: list[JSONObject] = []
    instructions = payload.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    convert = _Items(messages)
    for i, item in enumerate(history):
        convert.item(item, f"history[{i}]")
    for i, item in enumerate(items):
        convert.item(item, f"input[{i}]")
    if not convert.conversation:
        raise InvalidRequest("'input' must contain at least one message or item.", param="input")
    body: JSONObject = {"model": model, "messages": messages}
    tools = _tools(payload.get("tools"))
    if tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in tools]
        choice = _tool_choice(payload.get("tool_choice"), {str(t["name"]) for t in tools})
        if choice is not None:
            body["tool_choice"] = choice
        if isinstance(payload.get("parallel_tool_calls"), bool):
            body["parallel_tool_calls"] = payload["parallel_tool_calls"]
    _options(payload, body)
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    previous = payload.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest("'previous_response_id' must be a string.", param="previous_response_id")
    return Translated(
        body=body,
        payload=payload,
        items=tuple(items),
        tools=tuple(tools),
        stream=bool(stream),
        store=payload.get("store") is not False,
        previous_id=previous or None,
    )


class _Items:
    """Appends chat messages for input items: an assistant's function calls join its message, and a
    run of function call outputs become `tool` messages."""

    def __init__(self, messages: list[JSONObject]) -> None:
        self.messages = messages
        self.conversation = False  # whether any item (not only instructions) became a message

    def item(self, item: Mapping[str, object], where: str) -> None:
        kind = item.get("type") or "message"
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._call(item)
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, ("input_text", "output_text"))
            self._add({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        elif kind != "reasoning":
            _log.debug("responses: input item of type %r left out for a translated provider", kind)

    def _add(self, message: JSONObject) -> None:
        self.messages.append(message)
        self.conversation = True

    def _message(self, item: Mapping[str, object], where: str) -> None:
        role, content = item.get("role"), item.get("content")
        if role not in _ROLES:
            raise InvalidRequest(
                f"'{where}.role' must be one of 'user', 'assistant', 'system' or 'developer'.",
                param=f"{where}.role",
            )
        if isinstance(content, str):
            self._add({"role": role, "content": content})
            return
        if not isinstance(content, list):
            raise InvalidRequest(f"'{where}.content' must be a string or an array.", param=f"{where}.content")
        if role == "assistant":
            self._add({"role": "assistant", "content": _text(content, ("output_text", "input_text"))})
            return
        parts = [part for i, p in enumerate(content) if (part := _part(p, f"{where}.content[{i}]"))]
        if parts:
            self._add({"role": role, "content": parts})

    def _call(self, item: Mapping[str, object]) -> None:
        arguments = item.get("arguments")
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {
                "name": item.get("name"),
                "arguments": arguments if isinstance(arguments, str) else "",
            },
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last.get("role") == "assistant":
            calls = last.setdefault("tool_calls", [])
            assert isinstance(calls, list)
            calls.append(call)
            return
        self._add({"role": "assistant", "content": None, "tool_calls": [call]})


def _text(content: object, kinds: tuple[str, ...]) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, Mapping) and part.get("type") in kinds and isinstance(part.get("text"), str):
            texts.append(str(part["text"]))
    return "".join(texts)


def _part(part: object, where: str) -> JSONObject | None:
    if not isinstance(part, Mapping):
        raise InvalidRequest(f"'{where}' must be an object.", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text")}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: JSONObject = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file: JSONObject = {"file_data": part["file_data"]}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    _log.debug("responses: content part of type %r left out for a translated provider", kind)
    return None


def _tools(raw: object) -> list[JSONObject]:
    """The function tools (the only kind a translated provider can be given)."""
    tools = []
    for tool in raw if isinstance(raw, list) else ():
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str):
            tools.append(tool)
        elif isinstance(tool, dict):
            _log.debug("responses: tool of type %r left out for a translated provider", tool.get("type"))
    return tools


def _function(tool: Mapping[str, object]) -> JSONObject:
    function: JSONObject = {"name": tool["name"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    parameters = tool.get("parameters")
    function["parameters"] = (
        parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    )
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return function


def _tool_choice(choice: object, names: set[str]) -> object:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function" and choice.get("name") in names:
        return {"type": "function", "function": {"name": choice["name"]}}
    return None  # a hosted tool, or one that was left out: the provider's default (auto)


def _options(payload: Mapping[str, object], body: JSONObject) -> None:
    for name in ("temperature", "top_p", "metadata", "user"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    limit = payload.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequest("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
        body["max_completion_tokens"] = limit
    reasoning = payload.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    if isinstance(effort, str) and effort != "none":
        body["reasoning_effort"] = effort
    text = payload.get("text")
    form = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(form, Mapping) and form.get("type") == "json_schema":
        schema: JSONObject = {"name": form.get("name") or "output", "schema": form.get("schema")}
        for name in ("description", "strict"):
            if form.get(name) is not None:
                schema[name] = form[name]
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(form, Mapping) and form.get("type") == "json_object":
        body["response_format"] = {"type": "json_object"}


def _echo(payload: Mapping[str, object], model: str, tools: list[object], choice: object) -> JSONObject:
    """The fields of the response object that repeat the request (OpenAI's defaults where absent)."""
    reasoning = payload.get("reasoning")
    text = payload.get("text")
    if isinstance(choice, dict):  # back to the Responses API's shape of a named function
        function = choice.get("function")
        choice = {"type": "function", "name": function.get("name") if isinstance(function, dict) else None}
    echo: JSONObject = {
        "model": model,
        "created_at": int(time.time()),
        "instructions": payload.get("instructions") if isinstance(payload.get("instructions"), str) else None,
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": payload.get("parallel_tool_calls") is not False,
        "temperature": _number(payload.get("temperature"), 1),
        "top_p": _number(payload.get("top_p"), 1),
        "metadata": payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {},
        "max_output_tokens": payload.get("max_output_tokens"),
        "previous_response_id": payload.get("previous_response_id"),
        "reasoning": {
            "effort": reasoning.get("effort") if isinstance(reasoning, Mapping) else None,
            "summary": None,
        },
        "text": dict(text) if isinstance(text, dict) else {"format": {"type": "text"}},
        "store": payload.get("store") is not False,
        "truncation": "disabled",
        "background": False,
    }
    if isinstance(payload.get("user"), str):
        echo["user"] = payload["user"]
    return echo


def _number(value: object, default: float) -> object:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default
