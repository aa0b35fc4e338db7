"""Streams are forwarded as they arrive, and a client that goes away cancels the upstream at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import httpx2 as httpx
from starlette.types import Message
from tests.fakes.openai_server import FakeOpenAI, Script, stream_chunks
from tests.fakes.threaded import AsgiServer

from calcifer.http.sse import EventStream, typed_event

BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]}


def test_chunks_are_forwarded_as_they_arrive(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    """The upstream sends its first chunk, then holds the rest until the client has that first chunk:
    a gateway that waited for more before forwarding would only pass it on when the hold runs out."""
    hold = threading.Event()
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", ["a", "b", "c", "d"]), hold=hold))
    texts: list[str] = []
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=BODY, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                hold.set()
                texts.append(line)
    assert fake_openai.held == [True], "the first chunk reached the client only after the upstream went on"
    assert len(texts) == 6


def test_client_disconnect_cancels_the_upstream_request(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", [str(i) for i in range(50)]), delay=0.1))
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=BODY, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break
    deadline = time.monotonic() + 3
    while fake_openai.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_openai.cancelled == 1, "the upstream stream should be cancelled soon after the client left"


def test_a_client_that_stops_reading_is_given_up_after_the_write_timeout() -> None:
    """A write the client does not take within the write timeout ends the response: the events are
    closed and `on_close` runs, and the stream does not hang on the stuck write."""
    closed: list[str] = []

    async def events() -> AsyncIterator[bytes]:
        try:
            for i in range(1000):
                yield b"data: %d\n\n" % i
                await asyncio.sleep(0)
        finally:
            closed.append("events")

    async def on_close() -> None:
        closed.append("on_close")

    async def run() -> tuple[EventStream, float, int]:
        stream = EventStream(events(), headers={}, write_timeout=0.2, on_close=on_close)
        bodies: list[bytes] = []
        stuck = asyncio.Event()  # never set: the client's socket buffer is full

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])
                if len(bodies) > 1:
                    await stuck.wait()

        async def receive() -> Message:
            await asyncio.Event().wait()  # the client neither sends nor leaves
            raise AssertionError("unreachable")

        started = time.monotonic()
        await stream({"type": "http"}, receive, send)
        return stream, time.monotonic() - started, len(bodies)

    stream, took, writes = asyncio.run(run())
    assert stream.disconnected
    assert writes == 2  # the first frame, then the write that never completed
    assert 0.2 <= took < 2.0
    assert closed == ["events", "on_close"]


def test_typed_event_names_the_event_after_its_type() -> None:
    assert typed_event({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
