"""Shapes of the original Calcifer API, and of OpenAI's legacy `prompt` completions."""

from __future__ import annotations

import time
from decimal import Decimal

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.types import JSONObject, Priced, Usage
from calcifer.http.wire import money


def response(body: JSONObject, priced: Priced) -> JSONObject:
    """`{"id","model","provider","content","finish_reason","usage":{prompt,completion,cost}}`."""
    choice = _first_choice(body)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return {
        "id": body.get("id"),
        "model": body.get("model") or priced.model,
        "provider": priced.provider,
        "content": content if isinstance(content, str) else "",
        "finish_reason": choice.get("finish_reason"),
        "usage": usage_json(priced.usage, priced.cost),
    }


def usage_json(usage: Usage | None, cost: Decimal | None) -> JSONObject:
    return {
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "cost": money(cost),
    }


def delta_of(chunk: JSONObject) -> tuple[str, str | None]:
    """The text delta and the finish reason carried by one OpenAI stream chunk."""
    choice = _first_choice(chunk)
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    reason = choice.get("finish_reason")
    return (text if isinstance(text, str) else ""), (reason if isinstance(reason, str) else None)


def legacy_to_chat(body: JSONObject) -> JSONObject:
    """OpenAI's legacy `{model, prompt}` as a chat body with one user message."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest(
            "'prompt' must be a string (token arrays and batches are not supported).", param="prompt"
        )
    chat = {k: v for k, v in body.items() if k not in ("prompt", "echo", "suffix", "best_of", "logprobs")}
    chat["messages"] = [{"role": "user", "content": prompt}]
    return chat


def legacy_response(body: JSONObject, priced: Priced) -> JSONObject:
    choice = _first_choice(body)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    usage = body.get("usage")
    if isinstance(usage, dict):
        usage = {**usage, "cost": money(priced.cost)}
    return {
        "id": str(body.get("id", "")).replace("chatcmpl", "cmpl", 1),
        "object": "text_completion",
        "created": body.get("created", int(time.time())),
        "model": body.get("model") or priced.model,
        "choices": [
            {
                "text": content if isinstance(content, str) else "",
                "index": 0,
                "logprobs": None,
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        ],
        "usage": usage,
    }


def legacy_chunk(chunk: JSONObject, text: str, finish: str | None) -> JSONObject:
    return {
        "id": str(chunk.get("id", "")).replace("chatcmpl", "cmpl", 1),
        "object": "text_completion",
        "created": chunk.get("created", int(time.time())),
        "model": chunk.get("model", ""),
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }


def legacy_final(model: str, finish: str | None, usage: Usage | None, cost: Decimal | None) -> JSONObject:
    final: JSONObject = {
        "id": "cmpl-final",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish or "stop"}],
    }
    if usage is not None:
        final["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cost": money(cost),
        }
    return final


def _first_choice(body: JSONObject) -> JSONObject:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}
