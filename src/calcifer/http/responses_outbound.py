"""Response objects of the Responses API: built from a translated provider's `chat.completion` (its
first choice), and `usage.cost` added to an upstream's own. Pure: no I/O."""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal

from calcifer.domain.types import JSONObject, Usage
from calcifer.http.wire import money

# A finish reason that ends a response early: its status is "incomplete", for this reason.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_object(usage: Usage | None, cost: Decimal | None) -> JSONObject:
    """The Responses API's usage for domain `Usage` (cached ⊂ input, reasoning ⊂ output), with `cost`."""
    usage = usage or Usage(0, 0)
    body: JSONObject = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
        "cost": money(cost),
    }
    if usage.estimated:
        body["estimated"] = True
    return body


def add_cost(response: object, usage: Usage | None, cost: Decimal | None) -> None:
    """Add `cost` to an upstream response object's `usage` (replaced by the gateway's own usage,
    marked estimated, when the upstream reported none)."""
    if not isinstance(response, dict):
        return
    current = response.get("usage")
    if isinstance(current, dict):
        current["cost"] = money(cost)
    elif usage is not None:
        response["usage"] = usage_object(usage, cost)


def message_item(item_id: str, text: str, status: str = "completed") -> JSONObject:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": [part]}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> JSONObject:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    echo: Mapping[str, object],
    response_id: str,
    *,
    status: str,
    output: list[JSONObject],
    model: object = None,
    usage: JSONObject | None = None,
    incomplete: str | None = None,
    error: JSONObject | None = None,
) -> JSONObject:
    """A `response` object: the request's echoed fields, and what the model did."""
    body: JSONObject = {"id": response_id, "object": "response", **echo, "status": status}
    if isinstance(model, str) and model:
        body["model"] = model
    body["error"] = error
    body["incomplete_details"] = {"reason": incomplete} if incomplete else None
    body["output"] = output
    if status in ("completed", "incomplete", "failed"):
        body["completed_at"] = int(time.time()) if status == "completed" else None
    if usage is not None:
        body["usage"] = usage
    return body


def from_completion(
    echo: Mapping[str, object],
    response_id: str,
    completion: Mapping[str, object],
    usage: Usage | None,
    cost: Decimal | None,
) -> JSONObject:
    """The response object for a translated provider's `chat.completion` (its first choice)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    suffix = response_id.removeprefix("resp_")
    output: list[JSONObject] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(f"msg_{suffix}", text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        part = {"type": "refusal", "refusal": refusal}
        output.append({**message_item(f"msg_{suffix}r", ""), "content": [part]})
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        arguments = function.get("arguments")
        call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{suffix}{i}"
        output.append(
            call_item(
                f"fc_{suffix}{i}",
                str(call_id),
                str(function.get("name") or ""),
                arguments if isinstance(arguments, str) else "",
            )
        )
    incomplete = INCOMPLETE.get(str(choice.get("finish_reason")))
    return response_object(
        echo,
        response_id,
        status="incomplete" if incomplete else "completed",
        output=output,
        model=completion.get("model"),
        usage=usage_object(usage, cost),
        incomplete=incomplete,
    )
