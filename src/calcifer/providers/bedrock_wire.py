"""Bedrock's Converse API ↔ OpenAI chat completions, pure functions.

Converse is shaped like Anthropic's Messages API (a top-level system, alternating user and assistant
turns of content blocks, tool use and tool results as blocks), so an OpenAI request is first put in
Messages form by `anthropic_wire` (system messages lifted, consecutive turns merged, tool calls and
results, data-URL images) and its blocks then renamed to Converse's; an answer goes the other way. The
usage's `inputTokens` excludes cache reads and writes, as Anthropic's does.

Request: `{"messages": [{"role", "content": [{"text"} | {"image": {"format", "source": {"bytes"}}} |
{"toolUse": {"toolUseId", "name", "input"}} | {"toolResult": {"toolUseId", "content", "status"}}]}],
"system": [{"text"}], "inferenceConfig": {"maxTokens", "temperature", "topP", "stopSequences"},
"toolConfig": {"tools": [{"toolSpec": {"name", "description", "inputSchema": {"json"}}}],
"toolChoice": {"auto": {}} | {"any": {}} | {"tool": {"name"}}}}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.types import ChatResponse, JSONObject
from calcifer.providers.anthropic_wire import from_anthropic, to_anthropic

_STOP_REASONS = {"guardrail_intervened": "refusal", "content_filtered": "refusal"}
_CACHE_POINT: JSONObject = {"cachePoint": {"type": "default"}}


def to_converse(body: Mapping[str, object], model: str) -> JSONObject:
    """The Converse request for an OpenAI chat-completions `body` (the model goes in the URL)."""
    messages = to_anthropic(body, model, 0, stream=False)
    request: JSONObject = {}
    system = messages.get("system")
    if isinstance(system, list):
        request["system"] = [b for block in system for b in _blocks(block, "system")]
    request["messages"] = [
        {
            "role": turn["role"],
            "content": [b for block in turn["content"] for b in _blocks(block, "messages")],
        }
        for turn in messages.get("messages", [])  # type: ignore[attr-defined]
    ]
    config: JSONObject = {}
    if messages.get("max_tokens"):
        config["maxTokens"] = messages["max_tokens"]
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("stop_sequences", "stopSequences"),
    ):
        if messages.get(ours) is not None:
            config[theirs] = messages[ours]
    if config:
        request["inferenceConfig"] = config
    tools = messages.get("tools")
    if isinstance(tools, list):
        request["toolConfig"] = _tool_config(tools, messages.get("tool_choice"))
    return request


def _blocks(block: Mapping[str, object], where: str) -> list[JSONObject]:
    """One Messages block as Converse blocks (a cache breakpoint becomes a `cachePoint` after it)."""
    kind = block.get("type")
    converted: JSONObject
    if kind == "text":
        converted = {"text": block.get("text")}
    elif kind == "image":
        converted = {"image": _image(block.get("source"))}
    elif kind == "tool_use":
        converted = {
            "toolUse": {"toolUseId": block.get("id"), "name": block.get("name"), "input": block.get("input")}
        }
    elif kind == "tool_result":
        converted = {"toolResult": _tool_result(block)}
    else:
        raise InvalidRequest(f"Bedrock's Converse API takes no {kind!r} content here.", param=where)
    return [converted, _CACHE_POINT] if block.get("cache_control") else [converted]


def _image(source: object) -> JSONObject:
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        raise InvalidRequest(
            "Bedrock takes images as data URLs (data:image/png;base64,...), not links.", param="messages"
        )
    media = str(source.get("media_type", ""))
    return {"format": media.removeprefix("image/"), "source": {"bytes": source.get("data")}}


def _tool_result(block: Mapping[str, object]) -> JSONObject:
    content = block.get("content")
    parts = (
        [{"text": content}]
        if isinstance(content, str)
        else [{"text": p.get("text")} for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        if isinstance(content, list)
        else []
    )
    result: JSONObject = {"toolUseId": block.get("tool_use_id"), "content": parts or [{"text": ""}]}
    if block.get("is_error"):
        result["status"] = "error"
    return result


def _tool_config(tools: list[object], choice: object) -> JSONObject:
    specs = []
    for tool in tools:
        if isinstance(tool, Mapping):
            spec: JSONObject = {"name": tool.get("name"), "inputSchema": {"json": tool.get("input_schema")}}
            if tool.get("description"):
                spec["description"] = tool["description"]
            specs.append({"toolSpec": spec})
    config: JSONObject = {"tools": specs}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind in ("auto", "any"):
        config["toolChoice"] = {kind: {}}
    elif kind == "tool" and isinstance(choice, Mapping):
        config["toolChoice"] = {"tool": {"name": choice.get("name")}}
    return config  # `none`: Converse has no such choice; the tools stay (the history may use them)


def anthropic_usage(raw: object) -> JSONObject:
    """Converse's usage in Anthropic's words (both leave cache reads and writes out of the input)."""
    usage = raw if isinstance(raw, Mapping) else {}
    return {
        "input_tokens": usage.get("inputTokens", 0),
        "output_tokens": usage.get("outputTokens", 0),
        "cache_read_input_tokens": usage.get("cacheReadInputTokens", 0),
        "cache_creation_input_tokens": usage.get("cacheWriteInputTokens", 0),
    }


def stop_reason(raw: object) -> str:
    return _STOP_REASONS.get(str(raw), str(raw))


def from_converse(
    answer: Mapping[str, object], model: str, response_id: str, created: int, provider: str = "bedrock"
) -> ChatResponse:
    """The `chat.completion` for a Converse answer (reasoning blocks are not carried over)."""
    output = answer.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    blocks: list[JSONObject] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            blocks.append({"type": "text", "text": block["text"]})
        use = block.get("toolUse")
        if isinstance(use, Mapping):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": use.get("toolUseId"),
                    "name": use.get("name"),
                    "input": use.get("input"),
                }
            )
    message_form = {
        "id": response_id,
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason(answer.get("stopReason")),
        "usage": anthropic_usage(answer.get("usage")),
    }
    return from_anthropic(message_form, created, provider=provider)
