"""Streams are forwarded as they arrive, and a client that goes away cancels the upstream at once."""

from __future__ import annotations

import time

import httpx2 as httpx
from tests.fakes.openai_server import FakeOpenAI, Script, stream_chunks
from tests.fakes.threaded import AsgiServer

BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]}


def test_chunks_are_forwarded_as_they_arrive(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", ["a", "b", "c", "d"]), delay=0.3))
    started = time.monotonic()
    arrivals: list[float] = []
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=BODY, timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - started)
    # Six chunks paced 0.3 s apart upstream: the first must not wait for the last.
    assert arrivals[0] < 0.6
    assert arrivals[-1] - arrivals[0] > 1.0


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
