"""A fake OpenAI upstream on a raw asyncio protocol (uvloop + httptools) with pre-built answers.

`POST <prefix>/v1/chat/completions` (and `POST /v1/responses`, OpenAI's Responses API, answered the same
way with a response object or its 26-event stream), where the prefix picks the behaviour:
  (none)    the chat.completion JSON, or with `"stream": true` the 24-event SSE stream in one write;
  /paced    as above, but stream events are 10 ms apart and the JSON answer is unchanged;
  /delay    everything after a fixed 100 ms.
Run it: `python -m bench.upstream --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

import httptools
import orjson
import uvloop

from bench import payloads

_JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nopenai-processing-ms: 1\r\n"
    b"x-request-id: req_bench\r\ncontent-length: " + str(len(payloads.COMPLETION)).encode() + b"\r\n\r\n"
)
JSON_RESPONSE = _JSON_HEAD + payloads.COMPLETION
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"x-request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
)
_CHUNKS = [f"{len(event):x}\r\n".encode() + event + b"\r\n" for event in payloads.EVENTS]
_LAST_CHUNK = b"0\r\n\r\n"
SSE_RESPONSE = _SSE_HEAD + b"".join(_CHUNKS) + _LAST_CHUNK
RESPONSES_JSON = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\ncontent-length: "
    + str(len(payloads.RESPONSE)).encode()
    + b"\r\n\r\n"
    + payloads.RESPONSE
)
RESPONSES_SSE = (
    _SSE_HEAD
    + b"".join(f"{len(event):x}\r\n".encode() + event + b"\r\n" for event in payloads.RESPONSE_EVENTS)
    + _LAST_CHUNK
)
_NOT_FOUND_BODY = (
    b'{"error":{"message":"unknown path","type":"invalid_request_error","param":null,"code":null}}'
)
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_NOT_FOUND_BODY)).encode()
    + b"\r\n\r\n"
    + _NOT_FOUND_BODY
)
_ROUTES = {
    b"/v1/chat/completions": "fast",
    b"/paced/v1/chat/completions": "paced",
    b"/delay/v1/chat/completions": "delay",
    b"/v1/responses": "responses",
}


def wants_stream(body: bytes) -> bool:
    """Whether a chat request body asks for a stream (parsed only when it mentions `stream`)."""
    if b'"stream"' not in body:
        return False
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse with httptools, answer from the pre-built bytes."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        route = _ROUTES.get(self._url.split(b"?", 1)[0])
        body = b"".join(self._body)
        self._url, self._body = b"", []
        if route is None:
            self._write(NOT_FOUND)
        elif route == "responses":
            self._write(RESPONSES_SSE if wants_stream(body) else RESPONSES_JSON)
        elif route == "delay":
            self._loop.call_later(payloads.DELAY_SECONDS, self._answer, body, False)
        else:
            self._answer(body, route == "paced")

    def _answer(self, body: bytes, paced: bool) -> None:
        if not wants_stream(body):
            self._write(JSON_RESPONSE)
        elif not paced:
            self._write(SSE_RESPONSE)
        else:
            self._write(_SSE_HEAD + _CHUNKS[0])
            self._loop.call_later(payloads.PACE_SECONDS, self._pace, 1)

    def _pace(self, index: int) -> None:
        if index == len(_CHUNKS) - 1:
            self._write(_CHUNKS[index] + _LAST_CHUNK)
            return
        self._write(_CHUNKS[index])
        self._loop.call_later(payloads.PACE_SECONDS, self._pace, index + 1)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args: Any = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
