"""The fake upstream speaks OpenAI's wire protocol, read back with the TTFB client's own parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from bench.ttfb import build_request, measure, read_response
from bench.upstream import UpstreamProtocol, wants_stream

from bench import payloads


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(UpstreamProtocol, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _exchange(port: int, path: str, body: bytes) -> tuple[int, float | None, bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        writer.write(build_request("127.0.0.1", port, path, body))
        status, first, answer = await read_response(reader, started)
        return status, first, answer, time.perf_counter() - started
    finally:
        writer.close()


def _events(body: bytes) -> list[bytes]:
    return [line[len(b"data: ") :] for line in body.split(b"\n") if line.startswith(b"data: ")]


async def test_a_plain_request_gets_a_chat_completion_with_usage(port: int) -> None:
    status, first, body, _ = await _exchange(port, "/v1/chat/completions", payloads.REQUEST)
    assert status == 200 and first is None
    parsed = orjson.loads(body)
    assert parsed["object"] == "chat.completion"
    assert parsed["usage"]["prompt_tokens"] == 12 and parsed["usage"]["completion_tokens"] == 20


async def test_a_stream_is_24_events_chunks_then_usage_then_done(port: int) -> None:
    status, first, body, _ = await _exchange(port, "/v1/chat/completions", payloads.STREAM_REQUEST)
    events = _events(body)
    assert status == 200 and first is not None
    assert len(events) == payloads.STREAM_EVENTS == 24
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 32
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_the_paced_stream_sends_its_first_event_at_once_and_the_rest_10_ms_apart(port: int) -> None:
    status, first, body, total = await _exchange(port, "/paced/v1/chat/completions", payloads.STREAM_REQUEST)
    assert status == 200 and first is not None
    assert total >= (payloads.STREAM_EVENTS - 1) * payloads.PACE_SECONDS * 0.95
    assert first < total / 4  # the first event is not held back with the rest
    assert body == payloads.STREAM


async def test_the_delayed_upstream_answers_after_100_ms(port: int) -> None:
    status, _, body, total = await _exchange(port, "/delay/v1/chat/completions", payloads.REQUEST)
    assert status == 200 and body == payloads.COMPLETION
    assert total >= payloads.DELAY_SECONDS * 0.95


async def test_an_unknown_path_is_a_404_with_an_openai_error(port: int) -> None:
    status, _, body, _ = await _exchange(port, "/v2/nothing", payloads.REQUEST)
    assert status == 404 and orjson.loads(body)["error"]["type"] == "invalid_request_error"


async def test_the_ttfb_client_reuses_connections_and_times_every_stream(port: int) -> None:
    timings = await measure(
        "127.0.0.1", port, "/v1/chat/completions", payloads.STREAM_REQUEST, concurrency=2, seconds=5, limit=6
    )
    assert timings.errors == 0
    assert 6 <= len(timings.ttfb_ms) <= 7  # both workers may finish the response in flight
    assert set(timings.events) == {24}
    assert all(0 < t <= total for t, total in zip(timings.ttfb_ms, timings.total_ms, strict=True))


@pytest.mark.parametrize(
    ("body", "stream"),
    [
        (b'{"model":"m","stream":true}', True),
        (b'{"model":"m", "stream": true}', True),
        (b'{"model":"m","stream":false}', False),
        (b'{"model":"m","stream":"true"}', False),
        (b'{"model":"m","messages":[{"content":"stream"}]}', False),
        (b'{"stream":true', False),
    ],
)
def test_wants_stream_reads_the_flag_not_the_text(body: bytes, stream: bool) -> None:
    assert wants_stream(body) is stream
