"""An example Calcifer provider plugin: it answers every request from a fixed template.

The three steps of adding a provider, done from outside Calcifer:

1. Implement the `Provider` protocol (`name`, `models`, `complete`, `stream`, `supports`).
2. Register pricing: a `prices()` method returning `{model: PricingConfig}`; Calcifer loads it.
3. Wire it: the `calcifer.providers` entry point in `pyproject.toml` names `create_provider`.

Tokens are whitespace-separated words. The template comes from `CALCIFER_TEMPLATE` (default
"You said: {prompt}"), where `{prompt}` is the text of the last user message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping

from calcifer.domain.pricing import PricingConfig
from calcifer.domain.types import ChatRequest, ChatResponse, JSONObject, StreamChunk, Usage

MODEL = "template-1"
DEFAULT_TEMPLATE = "You said: {prompt}"
# USD per 1M tokens; Calcifer prices every request with these.
PRICES = {MODEL: PricingConfig.per_million(input="1.00", output="2.00")}


def _text(message: object) -> str:
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


class TemplateProvider:
    """Answers with `template.format(prompt=<last user message>)`."""

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        self.name = "template"
        self.models = frozenset({MODEL})
        self._template = template

    def supports(self, model: str) -> bool:
        return model in self.models

    def prices(self) -> Mapping[str, PricingConfig]:
        return PRICES

    def _answer(self, request: ChatRequest) -> tuple[str, Usage]:
        raw = request.body.get("messages")
        messages = raw if isinstance(raw, list) else []
        texts = [_text(m) for m in messages]
        users = [_text(m) for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        answer = self._template.format(prompt=users[-1] if users else "")
        usage = Usage(prompt_tokens=len(" ".join(texts).split()), completion_tokens=len(answer.split()))
        return answer, usage

    async def complete(self, request: ChatRequest) -> ChatResponse:
        answer, usage = self._answer(request)
        message = {"role": "assistant", "content": answer, "refusal": None}
        body: JSONObject = {
            "id": f"chatcmpl-template-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage_json(usage),
        }
        return ChatResponse(body=body, usage=usage, provider=self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        answer, usage = self._answer(request)
        base: JSONObject = {
            "id": f"chatcmpl-template-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
        }
        for delta, finish in (({"role": "assistant", "content": answer}, None), ({}, "stop")):
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            yield StreamChunk({**base, "choices": [choice]})
        yield StreamChunk({**base, "choices": [], "usage": _usage_json(usage)}, usage)


def _usage_json(usage: Usage) -> JSONObject:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def create_provider(env: Mapping[str, str]) -> TemplateProvider:
    """The entry point Calcifer calls at start-up with its environment."""
    return TemplateProvider(env.get("CALCIFER_TEMPLATE", DEFAULT_TEMPLATE))
