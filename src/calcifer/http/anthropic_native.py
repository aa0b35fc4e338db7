"""The faithful Anthropic lane at the edge: a client's Messages call kept as it came (`native_call`), and
the upstream's answer, stream events and errors relayed as its own bytes, with `usage.cost` added.

The cost (USD, exact) becomes the first member of the answer's top-level `usage` and of each
`message_delta` event's: spliced into the upstream's bytes where `"usage":{` occurs once in them (as
Anthropic writes its compact JSON), else written into the parsed object, encoded again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal

import orjson
from starlette.requests import Request

from calcifer.domain.errors import GatewayError, ProviderError
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatResponse, JSONObject, NativeCall, StreamChunk
from calcifer.http.anthropic_inbound import anthropic_error
from calcifer.http.sse import typed_event
from calcifer.http.wire import money

_HEADERS = ("anthropic-version", "anthropic-beta")  # the client's headers the Messages API defines
_SAFE_QUERY = re.compile(r"^[A-Za-z0-9._~%&=+,;:@/!$'()*-]*$")
_USAGE = b'"usage":{'
_log = logging.getLogger("calcifer.http.messages")


def native_call(request: Request, payload: Mapping[str, object], raw: bytes) -> NativeCall:
    """The client's call: its JSON object and own bytes, its Messages headers and its query string."""
    headers = tuple(
        (name, ",".join(request.headers.getlist(name))) for name in _HEADERS if name in request.headers
    )
    query = request.scope.get("query_string", b"").decode("latin-1")
    if not _SAFE_QUERY.match(query):
        _log.debug("/v1/messages: a query string with unexpected characters is not forwarded")
        query = ""
    return NativeCall(ANTHROPIC_MESSAGES, payload, headers, query, raw)


def message_bytes(response: ChatResponse, cost: Decimal | None) -> bytes:
    """A native answer as the client gets it: the upstream's bytes with the cost in `usage`."""
    raw = response.raw if response.raw is not None else orjson.dumps(response.body)
    return _spliced(raw, cost) or orjson.dumps(_costed(response.body, cost))


def event_frame(chunk: StreamChunk, cost: Decimal | None) -> bytes:
    """A native stream event's SSE frame as relayed: the upstream's bytes; a `message_delta` (the chunk
    that carries the usage) with the cost in its `usage`."""
    frame = chunk.raw if chunk.raw is not None else typed_event(chunk.data)
    if chunk.usage is None:
        return frame
    return _spliced(frame, cost) or typed_event(_costed(chunk.data, cost))


def error_bytes(error: GatewayError) -> tuple[int, bytes]:
    """The status and Anthropic error body for an error: the upstream's own body when it answered a
    client's native call with one."""
    status, body = anthropic_error(error)
    if isinstance(error, ProviderError) and error.api == ANTHROPIC_MESSAGES and error.body is not None:
        return status, error.body
    return status, orjson.dumps(body)


def _spliced(raw: bytes, cost: Decimal | None) -> bytes | None:
    if raw.count(_USAGE) != 1:
        return None
    at = raw.index(_USAGE) + len(_USAGE)
    value = b"null" if cost is None else format(cost, "f").encode()
    return raw[:at] + b'"cost":' + value + (b"" if raw[at : at + 1] == b"}" else b",") + raw[at:]


def _costed(data: Mapping[str, object], cost: Decimal | None) -> JSONObject:
    usage = data.get("usage")
    return {**data, "usage": {"cost": money(cost), **(usage if isinstance(usage, dict) else {})}}
