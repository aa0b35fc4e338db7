"""Anthropic's Messages stream events → OpenAI `chat.completion.chunk`s (pure, one stream per object).

Event order (PROVIDER_FACTS §2.3): `message_start`, then per content block `content_block_start`,
`content_block_delta`*, `content_block_stop`, then `message_delta` (stop reason, cumulative usage) and
`message_stop`; `ping` may come anywhere and `error` may come after the HTTP 200.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from calcifer.domain.errors import ProviderError
from calcifer.domain.types import JSONObject, StreamChunk
from calcifer.providers._http import error_for_status
from calcifer.providers.anthropic_wire import (
    FINISH_REASONS,
    anthropic_error_fields,
    usage_from_anthropic,
    usage_json,
)

# The HTTP status Anthropic gives each error type; a stream `error` event is mapped as if it were one
# (529 `overloaded_error` is reported as 503).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 503,
    "timeout_error": 504,
}
_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


class AnthropicChunker:
    """Turns one Messages stream's events into OpenAI chunks; the usage chunk comes at `message_stop`.

    Tool calls are numbered by their ordinal among tool blocks (OpenAI's `index`), not by Anthropic's
    content-block index.
    """

    def __init__(self, created: int, provider: str = "anthropic") -> None:
        self._created = created
        self._provider = provider
        self._id: object = None
        self._model: object = None
        self._usage: dict[str, object] = {}
        self._tools: dict[object, int] = {}
        self.finished = False

    def feed(self, event: Mapping[str, object]) -> list[StreamChunk]:
        """The chunks one event produces (often none). An `error` event raises a `ProviderError`."""
        kind = event.get("type")
        if kind == "message_start":
            return self._start(event.get("message"))
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            self.finished = True
            usage = usage_from_anthropic(self._usage)
            return [StreamChunk({**self._base(), "choices": [], "usage": usage_json(usage)}, usage)]
        if kind == "error":
            raise stream_error(event, self._provider)
        return []  # ping, content_block_stop, and event types added after this was written

    def _base(self) -> JSONObject:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: JSONObject, finish_reason: str | None = None) -> StreamChunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return StreamChunk({**self._base(), "choices": [choice]})

    def _start(self, message: object) -> list[StreamChunk]:
        if isinstance(message, Mapping):
            self._id = message.get("id")
            self._model = message.get("model")
            merge_usage(self._usage, message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: object, block: object) -> list[StreamChunk]:
        if not isinstance(block, Mapping):
            return []
        if block.get("type") == "text":
            text = block.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if block.get("type") == "tool_use":
            ordinal = len(self._tools)
            self._tools[index] = ordinal
            call = {
                "index": ordinal,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking and server-tool blocks are not carried over

    def _block_delta(self, index: object, delta: object) -> list[StreamChunk]:
        if not isinstance(delta, Mapping):
            return []
        if delta.get("type") == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if delta.get("type") == "input_json_delta" and index in self._tools:
            part = delta.get("partial_json")
            if not isinstance(part, str) or not part:
                return []
            call = {"index": self._tools[index], "function": {"arguments": part}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, event: Mapping[str, object]) -> list[StreamChunk]:
        merge_usage(self._usage, event.get("usage"))
        delta = event.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
        if reason is None:
            return []
        return [self._chunk({}, FINISH_REASONS.get(str(reason), "stop"))]


def merge_usage(usage: dict[str, object], raw: object) -> None:
    """Add the counts of a `message_start`'s or `message_delta`'s usage to `usage`: they are cumulative,
    so a later value replaces an earlier one."""
    if isinstance(raw, Mapping):
        usage.update({k: raw[k] for k in _USAGE_FIELDS if raw.get(k) is not None})
        if isinstance(raw.get("output_tokens_details"), Mapping):
            usage["output_tokens_details"] = raw["output_tokens_details"]


def stream_error(event: Mapping[str, object], provider: str) -> ProviderError:
    """The typed error for a stream `error` event, as if its type had come as an HTTP status."""
    data = orjson.dumps(event)
    fields = anthropic_error_fields(data)
    kind = fields[1] if fields else None
    status = ERROR_STATUS.get(kind or "", 502)
    return error_for_status(status, data, {}, provider, anthropic_error_fields)
