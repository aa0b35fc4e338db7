"""Anthropic's Messages API spoken natively (pure, no I/O): a client's own request as it must be sent,
and the upstream's stream read event by event, each relayed as its own bytes.

The body goes as the client sent it (its own bytes while routing leaves `model` alone, else its JSON
object with `model` renamed); its `anthropic-version` (which wins over the gateway's default) and
`anthropic-beta` headers and its query string go with it. Usage is read from the answer for pricing.
"""

from __future__ import annotations

from calcifer.domain.errors import ProviderError
from calcifer.domain.types import ANTHROPIC_MESSAGES, NativeCall, StreamChunk
from calcifer.providers._http import json_object
from calcifer.providers.anthropic_stream import merge_usage, stream_error
from calcifer.providers.anthropic_wire import usage_from_anthropic


def native_headers(native: NativeCall, default_version: str) -> dict[str, str]:
    """The client's Messages headers, with the gateway's API version where the client sent none."""
    return {"anthropic-version": default_version, **dict(native.headers)}


def native_url(url: str, native: NativeCall) -> str:
    return f"{url}?{native.query}" if native.query else url


def tag(error: ProviderError, body: bytes) -> ProviderError:
    """Mark an error of a native call with the upstream's own body (the route relays it unchanged)."""
    error.api, error.body = ANTHROPIC_MESSAGES, body
    return error


def sse_frame(name: str, data: bytes) -> bytes:
    """An event as SSE: its name and its data, one `data:` line per line of it."""
    lines = data.split(b"\n") if b"\n" in data else [data]
    return b"event: " + name.encode() + b"".join(b"\ndata: " + line for line in lines) + b"\n\n"


class NativeEvents:
    """Reads one Messages stream: every event becomes a chunk whose `data` is its JSON and whose `raw`
    is its SSE frame, relayed as is. The usage of `message_start` and of each `message_delta` is
    merged, and each `message_delta` chunk carries the total (so it is priced there); an `error`
    event raises the typed error, tagged with the event's own body."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._usage: dict[str, object] = {}
        self.finished = False

    def feed(self, name: str, data: bytes) -> StreamChunk:
        event = json_object(data, self._provider, "a stream event")
        kind = event.get("type")
        if not name:
            name = kind if isinstance(kind, str) else "message"
        chunk = StreamChunk(event, None, sse_frame(name, data))
        if kind == "message_start":
            message = event.get("message")
            merge_usage(self._usage, message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            merge_usage(self._usage, event.get("usage"))
            chunk.usage = usage_from_anthropic(self._usage)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise tag(stream_error(event, self._provider), data)
        return chunk
