"""The shared provider shell: SSE reading across arbitrary network pieces, Retry-After, error mapping."""

from __future__ import annotations

import email.utils

import pytest
from aiohttp import web

from calcifer.domain.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from calcifer.providers._http import error_for_status, retry_after_seconds, sse_events
from calcifer.providers.client import HttpClient
from tests.fakes.threaded import AiohttpServer

STREAM = (
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b": a comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b"data: [DONE]"
)


@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
async def test_sse_events_survive_any_split(piece: int) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(0, len(STREAM), piece):
            await response.write(STREAM[i : i + piece])
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    server = AiohttpServer(app)
    client = HttpClient()
    try:
        async with client.get(server.url + "/") as response:
            events = [event async for event in sse_events(response.iter_any())]
    finally:
        await client.close()
        server.close()
    assert events == [("message_start", b'{"a": 1}'), ("", b"line one\nline two"), ("", b"[DONE]")]


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3
    when = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=1_000_000) == 10
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "2"}) == 2
    assert retry_after_seconds({}) is None


def test_error_for_status_classes_and_fallback_message() -> None:
    limited = error_for_status(429, b'{"error": {"message": "slow"}}', {"retry-after": "1"}, "up")
    assert isinstance(limited, UpstreamRateLimited) and limited.retry_after == 1 and limited.message == "slow"
    broken = error_for_status(503, b"<html>oops</html>", {}, "up")
    assert isinstance(broken, UpstreamUnavailable) and "up answered HTTP 503" in broken.message
    rejected = error_for_status(
        400, b'{"error": {"message": "bad", "type": "t", "code": "c", "param": "p"}}', {}, "up"
    )
    assert isinstance(rejected, UpstreamRejected) and (rejected.kind, rejected.code, rejected.param) == (
        "t",
        "c",
        "p",
    )
    conflict = error_for_status(409, b"", {}, "up")
    assert isinstance(conflict, UpstreamUnavailable) and conflict.retryable
