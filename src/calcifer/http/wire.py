"""Request validation at the edge: only what routing and pricing need is checked; the rest passes."""

from __future__ import annotations

import asyncio
import zlib
from decimal import Decimal

import orjson
from starlette.requests import ClientDisconnect, Request

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.nesting import MAX_DEPTH, too_deep
from calcifer.domain.types import ChatRequest, JSONObject
from calcifer.http.errors import PayloadTooLarge, RequestTimeout, UnsupportedEncoding
from calcifer.runtime import deadlines


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refusing more than `limit` bytes (413) or a client slower than `timeout` (408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    receive = request.receive  # the ASGI messages themselves: Starlette's stream() adds a generator
    task = asyncio.current_task()
    assert task is not None
    try:
        with deadlines.for_loop().limit(task, timeout):
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                part = message.get("body", b"")
                more = message.get("more_body", False)
                size += len(part)
                if size > limit:
                    raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
                parts.append(part)
    except TimeoutError:
        raise RequestTimeout(f"The request body was not received within {timeout:g}s.") from None
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    encoding = request.headers.get("content-encoding")
    return raw if encoding is None else decoded(raw, encoding, limit)


_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib's window bits: gzip framing, zlib framing


def decoded(raw: bytes, encoding: str, limit: int) -> bytes:
    """A body sent with `Content-Encoding` gzip or deflate, decompressed (at most `limit` bytes: 413
    past it); any other encoding is refused with 415."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return raw
    wbits = _WBITS.get(name)
    if wbits is None:
        raise UnsupportedEncoding(
            f"Content-Encoding '{name}' is not supported: send the body plain, or with gzip or deflate."
        )
    inflate = zlib.decompressobj(wbits)
    try:
        body = inflate.decompress(raw, limit + 1)
    except zlib.error:
        raise InvalidRequest(f"The request body is not valid {name} data.") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"The decompressed request body is larger than the limit of {limit} bytes.")
    if not inflate.eof:
        raise InvalidRequest(f"The request body is not complete {name} data.")
    return body


_TOO_DEEP = f"Request body is nested too deeply: the gateway forwards JSON up to {MAX_DEPTH} levels deep."


def json_object(raw: bytes) -> JSONObject:
    """Parse a JSON object body, or say exactly what is wrong with it."""
    if not raw.strip():
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "recursion" in reason.lower() or "depth limit" in reason.lower():
            raise InvalidRequest(_TOO_DEEP) from None
        raise InvalidRequest(f"Request body is not valid JSON: {reason}") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"Request body must be a JSON object, not {_json_type(body)}.")
    # Most bodies are cleared by counting their brackets, without walking them.
    if too_deep(body, raw):
        raise InvalidRequest(_TOO_DEEP)
    return body


def chat_request(body: JSONObject) -> ChatRequest:
    """Validate the fields routing and pricing rely on; every other field passes through untouched."""
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be an array of message objects.", param="messages")
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(
                f"'messages[{i}].role' must be a non-empty string.", param=f"messages[{i}].role"
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    return ChatRequest(
        model=model,
        body=body,
        stream=bool(stream),
        include_usage=include_usage,
        max_output_tokens=_max_tokens(body),
    )


def _max_tokens(body: JSONObject) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
        return value
    return None


def money(cost: Decimal | None) -> orjson.Fragment | None:
    """A USD amount as an exact JSON number (no float rounding), or null when unpriced."""
    return None if cost is None else orjson.Fragment(format(cost, "f").encode())


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
