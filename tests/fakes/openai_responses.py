"""OpenAI's Responses API as the fake OpenAI upstream speaks it: response objects, and the exact event
sequence a stream of one is sent as (the shapes of OpenAI's spec, `ResponseStreamEvent`)."""

from __future__ import annotations

from typing import Any

CREATED = 1764000000

USAGE = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 25,
}


def message(text: str, item_id: str = "msg_fake1") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed", "content": [part]}


def function_call(name: str, arguments: str, call_id: str = "call_fake1") -> dict[str, Any]:
    return {
        "id": "fc_fake1",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def response(
    model: str,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    response_id: str = "resp_fake1",
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A completed response object, echoing the request's fields as OpenAI does."""
    request = request or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "completed_at": CREATED + 1,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output if output is not None else [message("Hello! How can I help?")],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage or USAGE,
        "metadata": request.get("metadata", {}),
    }


def events(final: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of `final` (a completed response), event by event, with sequence numbers."""
    sequence: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        sequence.append({"type": kind, "sequence_number": len(sequence), **fields})

    started = {**final, "status": "in_progress", "output": [], "completed_at": None}
    del started["usage"]
    add("response.created", response=started)
    add("response.in_progress", response=started)
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            add(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            place = {"item_id": item["id"], "output_index": index, "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            add("response.content_part.added", **place, part=empty)
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                add("response.output_text.delta", **place, delta=piece, logprobs=[])
            add("response.output_text.done", **place, text=text, logprobs=[])
            add("response.content_part.done", **place, part=item["content"][0])
        else:
            add(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            place = {"item_id": item["id"], "output_index": index}
            add("response.function_call_arguments.delta", **place, delta=item["arguments"])
            add(
                "response.function_call_arguments.done",
                **place,
                name=item["name"],
                arguments=item["arguments"],
            )
        add("response.output_item.done", output_index=index, item=item)
    add("response.completed", response=final)
    return sequence
