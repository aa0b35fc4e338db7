"""The native Anthropic endpoint's streams: OpenAI `chat.completion.chunk`s → Messages stream events."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from calcifer.domain.types import JSONObject, Usage
from calcifer.http.anthropic_inbound import STOP_REASONS, message_id, usage_body


class MessageStream:
    """Turns one stream of `chat.completion.chunk`s into Messages stream events.

    Feed every chunk to `feed`; when the stream has ended, `finish` (given the usage and cost the
    gateway priced) closes it with `message_delta` and `message_stop`. Each text run and each tool call
    becomes one content block; tool-call arguments go out as `input_json_delta`s as they arrive.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._blocks = 0
        self._open: int | None = None  # index of the open content block
        self._text_block: int | None = None
        self._tool_blocks: dict[object, int] = {}  # OpenAI tool-call index → block index
        self._stop_reason: str | None = None

    def _start(self, chat_id: object, model: object) -> JSONObject:
        self._started = True
        message: JSONObject = {
            "id": message_id(chat_id),
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) and model else self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return {"type": "message_start", "message": message}

    def _close(self, events: list[JSONObject]) -> None:
        if self._open is not None:
            events.append({"type": "content_block_stop", "index": self._open})
            self._open = None
            self._text_block = None

    def _open_block(self, block: JSONObject, events: list[JSONObject]) -> int:
        self._close(events)
        index = self._blocks
        self._blocks += 1
        self._open = index
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        return index

    def feed(self, chunk: Mapping[str, object]) -> list[JSONObject]:
        """The events one chunk produces (the first chunk also opens the message)."""
        events: list[JSONObject] = []
        if not self._started:
            events.append(self._start(chunk.get("id"), chunk.get("model")))
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, Mapping):
            return events
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            self._text(delta.get("content"), events)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, Mapping):
                    self._tool(call, events)
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            self._stop_reason = STOP_REASONS.get(reason, "end_turn")
            self._close(events)
        return events

    def _text(self, text: object, events: list[JSONObject]) -> None:
        if not isinstance(text, str) or not text:
            return
        if self._text_block is None:
            self._text_block = self._open_block({"type": "text", "text": ""}, events)
        delta = {"type": "text_delta", "text": text}
        events.append({"type": "content_block_delta", "index": self._text_block, "delta": delta})

    def _tool(self, call: Mapping[str, object], events: list[JSONObject]) -> None:
        key = call.get("index", 0)
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        if key not in self._tool_blocks:
            call_id = call.get("id") or f"toolu_calcifer_{len(self._tool_blocks)}"
            block = {"type": "tool_use", "id": call_id, "name": function.get("name"), "input": {}}
            self._tool_blocks[key] = self._open_block(block, events)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append({"type": "content_block_delta", "index": self._tool_blocks[key], "delta": delta})

    def finish(self, usage: Usage | None, cost: Decimal | None) -> list[JSONObject]:
        """The closing events: `message_delta` (stop reason, usage with `cost`) and `message_stop`."""
        events: list[JSONObject] = []
        if not self._started:
            events.append(self._start(None, self._model))
        self._close(events)
        delta = {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": None}
        events.append({"type": "message_delta", "delta": delta, "usage": usage_body(usage, cost)})
        events.append({"type": "message_stop"})
        return events
