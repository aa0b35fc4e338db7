"""Pure translation between OpenAI's chat-completions shape and Gemini's `generateContent` REST JSON.

Requests: system/developer messages become `systemInstruction`; assistant turns become `model` contents
(tool calls as `functionCall` parts); tool results become `functionResponse` parts of a `user` content,
named by looking up the assistant tool call they answer. Responses, stream chunks and `usageMetadata`
come back in OpenAI's shapes. A Gemini `thoughtSignature` on a function call travels inside the
OpenAI tool-call id (clients echo ids verbatim), because Gemini 3 rejects a tool turn without it.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Mapping
from typing import cast

import orjson

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.nesting import MAX_DEPTH, too_deep
from calcifer.domain.types import JSONObject, Usage

_SIGNATURE_MARK = "__sig__"  # base64 never contains "_", so the split is unambiguous
_ROLES = {"user": "user", "assistant": "model", "tool": "user", "function": "user"}
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3"}
_NATIVE_TOP_LEVEL = ("safetySettings", "cachedContent", "labels")
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_THINKING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "OTHER": "stop",
}
_FILTERED = "content_filter"  # SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, ...


# --- request --------------------------------------------------------------------------------------


def to_gemini(body: Mapping[str, object], model: str = "") -> JSONObject:
    """The `generateContent` request for an OpenAI chat-completions body (the model goes in the URL)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    system: list[JSONObject] = []
    contents: list[JSONObject] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content"), index))
            continue
        gemini_role = _ROLES.get(str(role))
        if gemini_role is None:
            raise InvalidRequest(f"messages[{index}] has unknown role {role!r}", param=f"messages[{index}]")
        if role == "assistant":
            parts = _assistant_parts(message, index, names)
        elif role in ("tool", "function"):
            parts = [_tool_result(message, index, names)]
        else:
            parts = _parts(message.get("content"), index)
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            cast(list[JSONObject], contents[-1]["parts"]).extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise InvalidRequest("Gemini needs at least one user or assistant message", param="messages")
    request: JSONObject = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    _tools(body, request)
    config = _generation_config(body, model)
    if config:
        request["generationConfig"] = config
    for key in _NATIVE_TOP_LEVEL:
        if key in body:
            request[key] = body[key]
    return request


def _parts(content: object, index: int) -> list[JSONObject]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"messages[{index}].content must be a string or an array", param="messages")
    return [_part(part, index) for part in content]


def _part(part: object, index: int) -> JSONObject:
    if not isinstance(part, Mapping):
        raise InvalidRequest(f"messages[{index}].content has a part that is not an object", param="messages")
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return _media(str(url or ""), index)
    if kind == "input_audio":
        audio = part.get("input_audio")
        if isinstance(audio, Mapping):
            mime = _AUDIO_MIME.get(str(audio.get("format")), f"audio/{audio.get('format')}")
            return {"inlineData": {"mimeType": mime, "data": str(audio.get("data", ""))}}
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, Mapping) else None
        if isinstance(data, str):
            return _media(data, index)
    raise InvalidRequest(
        f"messages[{index}] has a content part of type {kind!r} that Gemini cannot take", param="messages"
    )


def _media(url: str, index: int) -> JSONObject:
    """A data URL becomes `inlineData`; any other URL becomes `fileData` (Gemini fetches it)."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest(f"messages[{index}] has a data URL that is not base64", param="messages")
        return {"inlineData": {"mimeType": mime or "application/octet-stream", "data": data}}
    if not url:
        raise InvalidRequest(f"messages[{index}] has an image part without a url", param="messages")
    mime = mimetypes.guess_type(url)[0] or "application/octet-stream"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant_parts(message: Mapping[str, object], index: int, names: dict[str, str]) -> list[JSONObject]:
    parts = _parts(message.get("content"), index) if message.get("content") else []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"messages[{index}] has a tool call without a function name")
        name = str(function["name"])
        call_id = str(call.get("id", ""))
        names[call_id] = name
        part: JSONObject = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"))}}
        signature = call_id.partition(_SIGNATURE_MARK)[2]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(raw: object) -> object:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        return raw
    try:
        parsed: object = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("tool call arguments must be a JSON string", param="messages") from exc
    if too_deep(parsed, raw):
        raise InvalidRequest(f"tool call arguments nest more than {MAX_DEPTH} levels", param="messages")
    return parsed


def _tool_result(message: Mapping[str, object], index: int, names: dict[str, str]) -> JSONObject:
    if message.get("role") == "function":
        name = message.get("name")
    else:
        name = names.get(str(message.get("tool_call_id")))
    if not isinstance(name, str):
        raise InvalidRequest(
            f"messages[{index}] answers tool call {message.get('tool_call_id')!r}, "
            "which no earlier assistant message made",
            param=f"messages[{index}].tool_call_id",
        )
    content = message.get("content")
    text = (
        content
        if isinstance(content, str)
        else "".join(str(p.get("text", "")) for p in _parts(content, index))
    )
    try:
        value: object = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    if too_deep(value, text):  # kept as the text it came as: JSON that deep cannot be sent on
        value = text
    response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(body: Mapping[str, object], request: JSONObject) -> None:
    tools = body.get("tools")
    declarations: list[JSONObject] = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            raise InvalidRequest("only function tools can be sent to Gemini", param="tools")
        declaration: JSONObject = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    mode: JSONObject | None = None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        mode = {"mode": _TOOL_MODES[choice]}
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice must name a function", param="tool_choice")
        mode = {"mode": "ANY", "allowedFunctionNames": [name]}
    if mode is not None:
        request["toolConfig"] = {"functionCallingConfig": mode}


def _thinking(effort: object, model: str) -> JSONObject | None:
    """`reasoning_effort` as Gemini's `thinkingConfig`: a token budget for Gemini 2.x (Google's own
    OpenAI-compatibility mapping: none 0, low 1K, medium 8K, high 24K), a thinking level after it."""
    if not isinstance(effort, str):
        return None
    if model.startswith("gemini-2"):
        budget = _THINKING_BUDGETS.get(effort)
        return None if budget is None else {"thinkingBudget": budget}
    return {"thinkingLevel": effort} if effort in ("minimal", "low", "medium", "high") else None


def _generation_config(body: Mapping[str, object], model: str) -> JSONObject:
    config: JSONObject = {}
    renames = (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    )
    for ours, theirs in renames:
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = fmt.get("json_schema")
        if isinstance(schema, Mapping) and schema.get("schema") is not None:
            config["responseJsonSchema"] = schema["schema"]
    thinking = _thinking(body.get("reasoning_effort"), model)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    native = body.get("generationConfig")
    if isinstance(native, Mapping):
        config.update(native)
    return config


# --- response -------------------------------------------------------------------------------------


def usage_from_gemini(raw: object) -> Usage | None:
    """`usageMetadata` as domain `Usage`: thinking tokens are output, billed at the output rate."""
    if not isinstance(raw, Mapping):
        return None
    thoughts = _int(raw.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=_int(raw.get("promptTokenCount")) + _int(raw.get("toolUsePromptTokenCount")),
        completion_tokens=_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_json(usage: Usage) -> JSONObject:
    """OpenAI's usage object for a domain `Usage`."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def finish_reason(reason: object, called_tools: bool) -> str:
    """OpenAI's `finish_reason` for a Gemini `finishReason` (Gemini says STOP after a function call)."""
    mapped = _FINISH.get(str(reason), _FILTERED)
    return "tool_calls" if called_tools and mapped == "stop" else mapped


def tool_call(part: Mapping[str, object], call: Mapping[str, object]) -> JSONObject:
    """An OpenAI tool call for a `functionCall` part; its id carries the part's thought signature."""
    call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
    ident = str(call_id or f"call_{uuid.uuid4().hex[:24]}")
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        ident += _SIGNATURE_MARK + signature
    arguments = orjson.dumps(call.get("args") or {}).decode()
    return {"id": ident, "type": "function", "function": {"name": call.get("name"), "arguments": arguments}}


def candidate_parts(candidate: Mapping[str, object]) -> tuple[str, list[JSONObject]]:
    """The visible text and the tool calls of one candidate (thought summaries are left out)."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    texts: list[str] = []
    calls: list[JSONObject] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping) or part.get("thought") is True:
            continue
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            calls.append(tool_call(part, call))
        elif isinstance(part.get("text"), str):
            texts.append(str(part["text"]))
    return "".join(texts), calls


def completion_id(response: Mapping[str, object]) -> str:
    rid = response.get("responseId")
    return f"chatcmpl-{rid}" if isinstance(rid, str) and rid else f"chatcmpl-{uuid.uuid4().hex}"


def from_gemini(response: Mapping[str, object], model: str, created: int) -> tuple[JSONObject, Usage | None]:
    """A `chat.completion` body and its usage for a `GenerateContentResponse`."""
    choices: list[JSONObject] = []
    candidates = response.get("candidates")
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else []):
        if not isinstance(candidate, Mapping):
            continue
        text, calls = candidate_parts(candidate)
        message: JSONObject = {"role": "assistant", "content": text or None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else position,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(candidate.get("finishReason", "STOP"), bool(calls)),
            }
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        message = {"role": "assistant", "content": None, "refusal": None}
        choices.append({"index": 0, "message": message, "logprobs": None, "finish_reason": _FILTERED})
    usage = usage_from_gemini(response.get("usageMetadata"))
    body: JSONObject = {
        "id": completion_id(response),
        "object": "chat.completion",
        "created": created,
        "model": response.get("modelVersion") or model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage_json(usage)
    return body, usage
