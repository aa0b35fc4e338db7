"""OpenAI's Responses API, spoken natively (`ChatRequest.native` with api "openai.responses").

The client's request goes upstream as it was sent (only `model` renamed when routing renamed it), and
its answer comes back as the upstream's own bytes: the JSON body whole, a stream event by event with
each event's SSE frame kept. Usage is read from the response's `usage` (a stream's terminal event
carries the response) for cost and the ledger. Pure functions plus the stream reader; the HTTP calls
are `OpenAIProvider`'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.types import StreamChunk, Usage
from calcifer.providers._http import json_object, sse_events

# The events that end a response's stream; each carries the whole response, usage included.
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def usage_from_responses(raw: object) -> Usage | None:
    """The Responses API's usage (`input_tokens` includes `input_tokens_details.cached_tokens`;
    `output_tokens` includes `output_tokens_details.reasoning_tokens`) as domain `Usage`."""
    if not isinstance(raw, dict):
        return None
    inputs = raw.get("input_tokens_details")
    outputs = raw.get("output_tokens_details")
    details_in = inputs if isinstance(inputs, dict) else {}
    details_out = outputs if isinstance(outputs, dict) else {}
    return Usage(
        prompt_tokens=_int(raw.get("input_tokens")),
        completion_tokens=_int(raw.get("output_tokens")),
        cached_tokens=_int(details_in.get("cached_tokens")),
        cache_write_tokens=_int(details_in.get("cache_write_tokens")),
        reasoning_tokens=_int(details_out.get("reasoning_tokens")),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


async def response_events(pieces: AsyncIterator[bytes], provider: str) -> AsyncIterator[StreamChunk]:
    """A Responses stream's events as chunks (`data` the event, `raw` its SSE frame as received, `usage`
    on the terminal event). An `error` event, or a stream that ends before a terminal event, raises."""
    async for name, data in sse_events(pieces):
        event = json_object(data, provider, "a stream event")
        kind = event.get("type")
        if kind == "error":
            message = event.get("message")
            text = message if isinstance(message, str) else "upstream stream error"
            raise UpstreamUnavailable(f"{provider} stream failed: {text}")
        usage = None
        if kind in TERMINAL_EVENTS:
            response = event.get("response")
            usage = usage_from_responses(response.get("usage") if isinstance(response, dict) else None)
        yield StreamChunk(event, usage, _frame(name, data))
        if kind in TERMINAL_EVENTS:
            return
    raise UpstreamUnavailable(f"{provider} ended the stream before the response completed")


def _frame(name: str, data: bytes) -> bytes | None:
    """The event's SSE frame, as the upstream wrote it (None when its data spans several lines)."""
    if b"\n" in data or b"\r" in data:
        return None
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + data + b"\n\n"
