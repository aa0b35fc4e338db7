"""A stream that reaches its budget reservation (an upstream ignoring `max_tokens`) is cut with a final
error event; the ledger records it as cut short, and the key is charged exactly what the ledger says."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import orjson
import pytest

from tests.e2e.load import ledger_rows, sqlite_url
from tests.e2e.process import GatewayProcess
from tests.fakes.openai_server import FakeOpenAI, Script, stream_chunks

pytestmark = pytest.mark.timeout(60)

MASTER = "mk-e2e-stream-cut-0123456789abcdefgh"


async def test_stream_beyond_its_reservation_is_cut_recorded_and_charged(fake_openai: FakeOpenAI) -> None:
    # The upstream sends ten words whatever `max_tokens` says, and never reaches its usage chunk.
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", [f" w{i}" for i in range(10)])))
    env = {"CALCIFER_MASTER_KEY": MASTER, "OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": fake_openai.base_url}
    gateway = await asyncio.to_thread(GatewayProcess, env)
    master = {"authorization": f"Bearer {MASTER}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            async with session.post(
                gateway.url + "/admin/keys", json={"name": "cut", "max_budget": 1}, headers=master
            ) as response:
                assert response.status == 201
                created = await response.json()
            body = {
                "model": "gpt-4o",
                "max_tokens": 3,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            headers = {"authorization": f"Bearer {created['key']}", "x-request-id": "cut-at-reservation"}
            async with session.post(
                gateway.url + "/v1/chat/completions", json=body, headers=headers
            ) as response:
                status, stream = response.status, await response.read()
            async with session.get(gateway.url + f"/admin/keys/{created['id']}", headers=master) as response:
                view = await response.json()
    finally:
        log = await asyncio.to_thread(gateway.stop)

    assert status == 200
    events = [orjson.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: ")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    assert text == " w0 w1 w2"  # max_tokens words, then the cut
    assert events[-1]["error"]["code"] == "budget_exceeded" and b"[DONE]" not in stream
    rows = await ledger_rows(sqlite_url(gateway))
    assert [(r.request_id, r.status, r.cut_short) for r in rows] == [("cut-at-reservation", 429, True)]
    cost = rows[0].cost
    assert isinstance(cost, Decimal) and cost > 0
    assert Decimal(str(view["spend"])) == cost
    assert "Traceback" not in log
