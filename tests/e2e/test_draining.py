"""SIGTERM with `CALCIFER_SHUTDOWN_DELAY`: readiness fails at once, the gateway still serves through the
pause, then stops accepting, finishes the stream in flight, writes the ledger, and exits."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import orjson
import pytest

from tests.e2e.load import Sent, ledger_rows, send, sqlite_url
from tests.e2e.process import GatewayProcess
from tests.fakes.openai_server import FakeOpenAI, Script, stream_chunks

pytestmark = pytest.mark.timeout(120)

PAUSE = 2.0
CHUNK_DELAY = 0.3  # 12 chunks: the stream outlasts the pause, and ends within the grace


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with session.get(url) as response:
        return response.status, await response.json(loads=orjson.loads)


async def _refused(url: str) -> float:
    """Poll with fresh connections until the port refuses one; when that happened."""
    while True:
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
                await _get(session, url)
        except (aiohttp.ClientError, ConnectionError):
            return time.monotonic()
        await asyncio.sleep(0.05)


async def test_sigterm_fails_readiness_at_once_serves_through_the_pause_then_drains(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(Script(delay=CHUNK_DELAY, chunks=stream_chunks("gpt-4o", ["word "] * 9)))
    gateway = await asyncio.to_thread(
        GatewayProcess,
        {
            "OPENAI_API_KEY": "sk-e2e",
            "OPENAI_BASE_URL": fake_openai.base_url,
            "CALCIFER_SHUTDOWN_DELAY": f"{PAUSE}s",
            "CALCIFER_SHUTDOWN_GRACE": "20s",
        },
    )
    url = gateway.url + "/v1/chat/completions"
    streamed = Sent("drain-stream", url, stream=True)
    during = Sent("drain-during-pause", url, stream=False)
    body: dict[str, object] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            assert await _get(session, gateway.url + "/health/ready") == (
                200,
                {
                    "status": "ready",
                    "started": True,
                    "draining": False,
                    "checks": {"database": "ok", "redis": "not configured"},
                },
            )
            stream = asyncio.create_task(
                send(
                    session,
                    streamed,
                    body | {"stream": True, "stream_options": {"include_usage": True}},
                    None,
                )
            )
            for _ in range(1000):  # until the stream is in flight upstream (the fake runs in a thread)
                if fake_openai.requests:
                    break
                await asyncio.sleep(0.01)
            signalled = time.monotonic()
            gateway.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)

            status, ready = await _get(session, gateway.url + "/health/ready")
            assert (status, ready["status"], ready["draining"]) == (503, "draining", True)
            assert (await _get(session, gateway.url + "/ready"))[0] == 503
            assert await _get(session, gateway.url + "/health/live") == (200, {"status": "ok"})
            await send(session, during, body, None)  # still served: the port is open through the pause
            assert during.status == 200 and during.complete()

            refused_at = await _refused(gateway.url + "/health/live")
            assert refused_at - signalled >= PAUSE * 0.9
            assert not stream.done(), "the stream should still be in flight when the port closes"
            await stream
        code = await asyncio.to_thread(gateway.wait, 30)
    finally:
        log = await asyncio.to_thread(gateway.stop)

    assert streamed.status == 200 and streamed.complete(), streamed.body[-300:]
    assert code in (0, -signal.SIGTERM)
    rows = {row.request_id: row for row in await ledger_rows(sqlite_url(gateway))}
    assert set(rows) == {"drain-stream", "drain-during-pause"}
    assert all(row.status == 200 and not row.cut_short and row.cost is not None for row in rows.values())
    # The order: the drain starts, then (after the pause) the server shuts down and waits for the stream.
    assert log.index("draining: readiness fails now") < log.index("Shutting down")
    assert "Traceback" not in log
