"""`echo4`: the built-in offline provider. It answers with the text of the input messages.

Tokens are whitespace-separated words: the prompt counts every input message, the completion the
echoed text. With `max_tokens`, the echo is cut to that many words and finishes with `length`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal

from calcifer.domain.pricing import PricingConfig
from calcifer.domain.types import ChatRequest, ChatResponse, JSONObject, StreamChunk, Usage

ECHO_MODEL = "echo4"
ECHO_PRICING = PricingConfig(input_cost_per_1k=Decimal("0.05"), output_cost_per_1k=Decimal("0.05"))
_WORD_WITH_SPACE = re.compile(r"\s*\S+")


def message_text(message: object) -> str:
    """The text of one OpenAI message: its string content, or its text parts joined."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


class EchoProvider:
    name = "echo"
    models = frozenset({ECHO_MODEL})

    def supports(self, model: str) -> bool:
        return model in self.models

    def _answer(self, request: ChatRequest) -> tuple[str, str, Usage]:
        messages = request.body.get("messages")
        texts = [message_text(m) for m in messages] if isinstance(messages, list) else []
        prompt_text = "\n".join(texts)
        words = prompt_text.split()
        finish = "stop"
        text = prompt_text
        limit = request.max_output_tokens
        if limit is not None and len(words) > limit:
            text = "".join(_WORD_WITH_SPACE.findall(prompt_text)[:limit]).lstrip()
            finish = "length"
        usage = Usage(prompt_tokens=len(words), completion_tokens=len(text.split()))
        return text, finish, usage

    async def complete(self, request: ChatRequest) -> ChatResponse:
        text, finish, usage = self._answer(request)
        body: JSONObject = {
            "id": f"chatcmpl-echo-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": _usage_json(usage),
        }
        return ChatResponse(body=body, usage=usage, provider=self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        text, finish, usage = self._answer(request)
        base: JSONObject = {
            "id": f"chatcmpl-echo-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
        }

        def chunk(delta: JSONObject, finish_reason: str | None = None) -> StreamChunk:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return StreamChunk({**base, "choices": [choice]})

        yield chunk({"role": "assistant", "content": ""})
        for piece in _WORD_WITH_SPACE.findall(text):
            yield chunk({"content": piece})
        yield chunk({}, finish)
        yield StreamChunk({**base, "choices": [], "usage": _usage_json(usage)}, usage)


def _usage_json(usage: Usage) -> JSONObject:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
