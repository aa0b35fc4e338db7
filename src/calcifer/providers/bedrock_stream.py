"""Bedrock's binary event streams: ConverseStream's events as Anthropic Messages stream events (which
`AnthropicChunker` turns into OpenAI chunks), and the framing itself, decoded by botocore.

AWS's `application/vnd.amazon.eventstream` framing: each message is a prelude (total length, headers
length, CRC32), headers (`:message-type` event or exception, `:event-type`, `:exception-type`), a JSON
payload and a CRC32 of the whole. botocore's `EventStreamBuffer` checks both CRCs.

ConverseStream order: `messageStart`, per block `contentBlockStart` (tool use only), `contentBlockDelta`*
and `contentBlockStop`, then `messageStop` (the stop reason) and `metadata` (usage, metrics).
InvokeModelWithResponseStream sends `chunk` events whose payload's `bytes` is base64 of one event of
the model's own stream (Anthropic's Messages events for Claude).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import JSONObject
from calcifer.providers._http import error_for_status
from calcifer.providers.bedrock_wire import anthropic_usage, stop_reason

# The HTTP status of each exception AWS may send inside a stream.
_EXCEPTION_STATUS = {
    "throttlingException": 429,
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 502,
    "modelTimeoutException": 504,
}


async def event_messages(
    pieces: AsyncIterator[bytes], provider: str
) -> AsyncIterator[tuple[str, JSONObject]]:
    """(event type, JSON payload) of each event-stream message as it arrives; an exception message
    raises its typed error."""
    buffer = EventStreamBuffer()
    try:
        async for piece in pieces:
            buffer.add_data(piece)
            for message in buffer:
                headers = message.headers
                payload = orjson.loads(message.payload) if message.payload else {}
                if not isinstance(payload, dict):
                    raise UpstreamUnavailable(f"{provider} sent an event that is not a JSON object")
                if headers.get(":message-type") != "event":
                    kind = str(headers.get(":exception-type") or headers.get(":error-code") or "")
                    raise exception_error(kind, message.payload, provider)
                yield str(headers.get(":event-type", "")), payload
    except (ParserError, orjson.JSONDecodeError) as error:
        raise UpstreamUnavailable(f"{provider} sent a broken event stream: {error}") from error


def exception_error(kind: str, payload: bytes, provider: str) -> ProviderError:
    status = _EXCEPTION_STATUS.get(kind, 502)
    error = error_for_status(status, payload, {}, provider, aws_error_fields)
    return error


def aws_error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None] | None:
    """AWS's error body `{"message": ...}` (or `Message`) as OpenAI's error fields."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    message = parsed.get("message", parsed.get("Message"))
    return (message, None, None, None) if isinstance(message, str) else None


class ConverseEvents:
    """One ConverseStream as Messages events: text blocks get the `content_block_start` Converse does
    not send, and the stop reason waits for `metadata` to go out with the usage."""

    def __init__(self, response_id: str, model: str) -> None:
        self._id = response_id
        self._model = model
        self._open: set[object] = set()
        self._stop: object = "end_turn"

    def feed(self, kind: str, event: Mapping[str, object]) -> list[JSONObject]:
        index = event.get("contentBlockIndex", 0)
        if kind == "messageStart":
            message = {
                "id": self._id,
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "usage": {},
            }
            return [{"type": "message_start", "message": message}]
        if kind == "contentBlockStart":
            start = event.get("start")
            use = start.get("toolUse") if isinstance(start, Mapping) else None
            if not isinstance(use, Mapping):
                return []
            self._open.add(index)
            block: JSONObject = {
                "type": "tool_use",
                "id": use.get("toolUseId"),
                "name": use.get("name"),
                "input": {},
            }
            return [{"type": "content_block_start", "index": index, "content_block": block}]
        if kind == "contentBlockDelta":
            return self._delta(index, event.get("delta"))
        if kind == "contentBlockStop":
            self._open.discard(index)
            return [{"type": "content_block_stop", "index": index}]
        if kind == "messageStop":
            self._stop = event.get("stopReason", "end_turn")
            return []
        if kind == "metadata":
            delta = {"stop_reason": stop_reason(self._stop)}
            usage = anthropic_usage(event.get("usage"))
            return [{"type": "message_delta", "delta": delta, "usage": usage}, {"type": "message_stop"}]
        return []

    def _delta(self, index: object, delta: object) -> list[JSONObject]:
        if not isinstance(delta, Mapping):
            return []
        if isinstance(delta.get("text"), str):
            events: list[JSONObject] = []
            if index not in self._open:
                self._open.add(index)
                events.append(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    }
                )
            text_delta = {"type": "text_delta", "text": delta["text"]}
            return [*events, {"type": "content_block_delta", "index": index, "delta": text_delta}]
        use = delta.get("toolUse")
        if isinstance(use, Mapping) and isinstance(use.get("input"), str):
            json_delta = {"type": "input_json_delta", "partial_json": use["input"]}
            return [{"type": "content_block_delta", "index": index, "delta": json_delta}]
        return []  # reasoning content is not carried over
