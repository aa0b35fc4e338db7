"""Token counting, for the requests whose provider reports no usage (a stream cut short, a server that
omits it): the pure rules that turn a request or an answer into text.

The prompt is counted the way OpenAI documents for its chat models (the cookbook "How to count tokens
with tiktoken"): every message costs 3 tokens of framing plus its role, content and name (a name 1 more),
and every answer is primed with 3 more. Tool definitions and tool calls are counted as their JSON text,
an image part as 85 tokens (OpenAI's price of a low-detail image). Without a real tokenizer a text
is estimated at one token per 4 characters, rounded up (OpenAI's rule of thumb for English text).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from calcifer.domain.ports import TokenCounter
from calcifer.domain.types import ChatRequest, Usage

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 85
CHARS_PER_TOKEN = 4


def estimate_text(text: str) -> int:
    """One token per 4 characters, rounded up: the estimate where no tokenizer works offline."""
    return -(-len(text) // CHARS_PER_TOKEN)


def prompt_tokens(body: Mapping[str, object], count: Callable[[str], int]) -> int:
    """The prompt tokens of an OpenAI chat body, each text counted by `count`, framing per OpenAI."""
    total = REPLY_PRIMING
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(value, count)
            elif key == "tool_calls":
                total += count(_json(value))
            elif isinstance(value, str):
                total += count(value) + (TOKENS_PER_NAME if key == "name" else 0)
    for key in ("tools", "functions"):
        if body.get(key):
            total += count(_json(body[key]))
    return total


def _content_tokens(content: object, count: Callable[[str], int]) -> int:
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        text = part.get("text")
        if isinstance(text, str):
            total += count(text)
        elif part.get("type") in ("image_url", "image", "input_image"):
            total += IMAGE_TOKENS
    return total


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def answer_text(body: Mapping[str, object]) -> str:
    """Everything a `chat.completion` answer (or an Anthropic `message`) generated: its text, reasoning
    text and tool calls."""
    parts: list[str] = []
    choices = body.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, Mapping) else None
        if isinstance(message, Mapping):
            collect_fragments(message, parts)
    content = body.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict):
            _collect_block(block, parts)
    return "".join(parts)


_BLOCK_TEXTS = ("text", "thinking", "partial_json")  # Anthropic's content blocks and their deltas


def _collect_block(block: dict[str, object], into: list[str]) -> None:
    """The generated text of an Anthropic content block or block delta (a tool's input as JSON)."""
    for key in _BLOCK_TEXTS:
        text = block.get(key)
        if isinstance(text, str) and text:
            into.append(text)
    if block.get("type") == "tool_use":
        into.append(_json(block.get("input")))


def collect_fragments(delta: Mapping[str, object], into: list[str]) -> None:
    """Append the generated text of one message or stream delta: content, reasoning content, and each
    tool call's name and arguments (stream fragments included)."""
    for key in ("content", "reasoning_content"):
        text = delta.get(key)
        if isinstance(text, str) and text:
            into.append(text)
    calls = delta.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                text = function.get(key)
                if isinstance(text, str) and text:
                    into.append(text)


def collect_chunk(data: Mapping[str, object], into: list[str]) -> None:
    """Append the generated text of one `chat.completion.chunk` (every choice's delta), or of one
    Anthropic stream event (a content block's delta). Parsed JSON is made of dicts, so plain `dict`
    checks (an ABC check per chunk showed in the stream profile)."""
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            collect_fragments(delta, into)
    if choices is None and data.get("type") == "content_block_delta":
        delta = data.get("delta")
        if isinstance(delta, dict):
            _collect_block(delta, into)


def estimate_usage(counter: TokenCounter, request: ChatRequest, generated: str) -> Usage:
    """The usage of a request whose provider reported none, marked as estimated."""
    completion = counter.count_text(request.model, generated) if generated else 0
    return Usage(counter.count_prompt(request), completion, estimated=True)


class CharCounter:
    """The documented estimate for every model: 4 characters a token, OpenAI's message framing."""

    def count_prompt(self, request: ChatRequest) -> int:
        return prompt_tokens(request.body, estimate_text)

    def count_text(self, model: str, text: str) -> int:
        return estimate_text(text)
