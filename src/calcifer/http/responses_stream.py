"""Responses API streams: the full event sequence built from a translated provider's chat chunks, and
the failure events that end any Responses stream. Pure: no I/O.

A translated stream goes `response.created`, `response.in_progress`, then per output item
`response.output_item.added`, (for a message) `response.content_part.added`, `response.output_text.delta`
... `response.output_text.done`, `response.content_part.done`, (for a function call)
`response.function_call_arguments.delta` ... `.done`, and `response.output_item.done`; it ends with
`response.completed` (or `response.incomplete`) carrying the whole response, usage and cost included.
Every event has the next `sequence_number`. A failure ends it with `response.failed`, or with an
`error` event when nothing was sent yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import JSONObject, Usage
from calcifer.http.errors import status_of
from calcifer.http.responses_outbound import (
    INCOMPLETE,
    call_item,
    message_item,
    response_object,
    usage_object,
)
from calcifer.http.sse import typed_event


def failure(error: GatewayError) -> JSONObject:
    """A response's `error` for a gateway error (the API's codes: rate limit, else server error)."""
    code = "rate_limit_exceeded" if status_of(error) == 429 else "server_error"
    return {"code": code, "message": error.message}


def error_event(error: GatewayError, sequence_number: int) -> JSONObject:
    """The `error` event that ends a stream before any response event was sent."""
    return {
        "type": "error",
        "code": error.code or error.kind,
        "message": error.message,
        "param": error.param,
        "sequence_number": sequence_number,
    }


class _Item:
    __slots__ = ("arguments", "call_id", "id", "index", "kind", "name", "text")

    def __init__(self, kind: str, item_id: str, index: int, call_id: str = "", name: str = "") -> None:
        self.kind, self.id, self.index = kind, item_id, index
        self.call_id, self.name = call_id, name
        self.text: list[str] = []
        self.arguments: list[str] = []

    def done(self) -> JSONObject:
        if self.kind == "message":
            return message_item(self.id, "".join(self.text))
        return call_item(self.id, self.call_id, self.name, "".join(self.arguments))


class ResponseEvents:
    """Turns one stream of `chat.completion.chunk`s into Responses stream events (encoded frames).

    `feed` each chunk; `finish` (given the usage and cost the gateway priced) closes the stream and
    returns the final response object beside its frames; `fail` ends it on an error.
    """

    def __init__(self, echo: Mapping[str, object], response_id: str) -> None:
        self.echo = echo
        self.id = response_id
        self._suffix = response_id.removeprefix("resp_")
        self._sequence = 0
        self._model: object = None
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[object, _Item] = {}  # chat tool-call index → its item
        self._finish: str | None = None
        self.started = False

    def _emit(self, frames: list[bytes], kind: str, **fields: object) -> None:
        event: JSONObject = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        frames.append(typed_event(event))

    def _response(self, status: str, **fields: object) -> JSONObject:
        output = [item.done() for item in self._items] if status != "in_progress" else []
        return response_object(self.echo, self.id, status=status, output=output, model=self._model, **fields)  # type: ignore[arg-type]

    def _start(self, frames: list[bytes]) -> None:
        self.started = True
        self._emit(frames, "response.created", response=self._response("in_progress"))
        self._emit(frames, "response.in_progress", response=self._response("in_progress"))

    def feed(self, chunk: Mapping[str, object]) -> list[bytes]:
        frames: list[bytes] = []
        if self._model is None and isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        if not self.started:
            self._start(frames)
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, Mapping):
            return frames
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._text(text, frames)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, Mapping):
                    self._call(call, frames)
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            self._finish = reason
        return frames

    def _text(self, text: str, frames: list[bytes]) -> None:
        item = self._open
        if item is None or item.kind != "message":
            item = self._add("message", f"msg_{self._suffix}{len(self._items)}", frames)
        item.text.append(text)
        self._emit(
            frames,
            "response.output_text.delta",
            item_id=item.id,
            output_index=item.index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call(self, call: Mapping[str, object], frames: list[bytes]) -> None:
        key = call.get("index", 0)
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        item = self._calls.get(key)
        if item is None:
            index = len(self._items)
            call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{self._suffix}{index}"
            name = function.get("name") if isinstance(function.get("name"), str) else ""
            item = self._add("function_call", f"fc_{self._suffix}{index}", frames, str(call_id), str(name))
            self._calls[key] = item
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.arguments.append(arguments)
            self._emit(
                frames,
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=item.index,
                delta=arguments,
            )

    def _add(self, kind: str, item_id: str, frames: list[bytes], call_id: str = "", name: str = "") -> _Item:
        self._close(frames)
        item = _Item(kind, item_id, len(self._items), call_id, name)
        self._items.append(item)
        self._open = item
        if kind == "message":
            added = {**message_item(item_id, "", "in_progress"), "content": []}
            self._emit(frames, "response.output_item.added", output_index=item.index, item=added)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self._emit(
                frames,
                "response.content_part.added",
                item_id=item_id,
                output_index=item.index,
                content_index=0,
                part=part,
            )
        else:
            added = call_item(item_id, call_id, name, "", "in_progress")
            self._emit(frames, "response.output_item.added", output_index=item.index, item=added)
        return item

    def _close(self, frames: list[bytes]) -> None:
        item = self._open
        if item is None:
            return
        self._open = None
        done = item.done()
        if item.kind == "message":
            text = "".join(item.text)
            place = {"item_id": item.id, "output_index": item.index, "content_index": 0}
            self._emit(frames, "response.output_text.done", **place, text=text, logprobs=[])
            content = done["content"]
            assert isinstance(content, list)
            self._emit(frames, "response.content_part.done", **place, part=content[0])
        else:
            self._emit(
                frames,
                "response.function_call_arguments.done",
                item_id=item.id,
                name=item.name,
                output_index=item.index,
                arguments="".join(item.arguments),
            )
        self._emit(frames, "response.output_item.done", output_index=item.index, item=done)

    def finish(self, usage: Usage | None, cost: Decimal | None) -> tuple[list[bytes], JSONObject]:
        """The closing frames (`response.completed`, or `response.incomplete`) and that response."""
        frames: list[bytes] = []
        if not self.started:
            self._start(frames)
        self._close(frames)
        incomplete = INCOMPLETE.get(self._finish or "")
        status = "incomplete" if incomplete else "completed"
        response = self._response(status, usage=usage_object(usage, cost), incomplete=incomplete)
        self._emit(frames, f"response.{status}", response=response)
        return frames, response

    def fail(self, error: GatewayError, usage: Usage | None, cost: Decimal | None) -> bytes:
        """The frame that ends the stream on `error`: `response.failed`, or `error` if nothing was sent."""
        if not self.started:
            return typed_event(error_event(error, self._sequence))
        response = self._response("failed", usage=usage_object(usage, cost), error=failure(error))
        event: JSONObject = {
            "type": "response.failed",
            "sequence_number": self._sequence,
            "response": response,
        }
        self._sequence += 1
        return typed_event(event)
