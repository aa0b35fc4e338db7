"""A client that goes away in the middle of a stream: the ledger records the request as cut short (499)
with what was delivered and what it cost, and the key's budget is charged the same amount."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import orjson
import pytest

from tests.e2e.load import ledger_rows, sqlite_url
from tests.e2e.process import GatewayProcess

pytestmark = pytest.mark.timeout(60)

MASTER = "mk-e2e-disconnect-0123456789abcdefgh"
# A stream of ~6 MB to a client that reads 4 KB of it: the server is blocked writing it (its socket
# buffer holds at most 4 MB) when the client goes away.
WORDS = 30_000


async def http(port: int, method: str, path: str, body: object, key: str) -> dict[str, object]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = orjson.dumps(body) if body is not None else b""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: calcifer\r\nauthorization: Bearer {key}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
            "connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] in (b"200", b"201"), response[:500]
    answer: dict[str, object] = orjson.loads(payload)
    return answer


async def abandon_stream(port: int, key: str, request_id: str) -> bytes:
    """Start a long stream, read its first bytes, stop reading for a while, then drop the connection."""
    text = " ".join(f"w{i}" for i in range(WORDS))
    messages = [{"role": "user", "content": text}]
    body = orjson.dumps({"model": "echo4", "stream": True, "max_tokens": 2 * WORDS, "messages": messages})
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: no window autotuning
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: calcifer\r\nauthorization: Bearer {key}\r\n"
        f"x-request-id: {request_id}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    first = await asyncio.wait_for(reader.readexactly(4096), 10)
    await asyncio.sleep(0.5)
    writer.transport.abort()
    return first


async def test_client_gone_mid_stream_is_recorded_as_delivered_and_charged() -> None:
    gateway = await asyncio.to_thread(GatewayProcess, {"CALCIFER_MASTER_KEY": MASTER})
    try:
        created = await http(gateway.port, "POST", "/admin/keys", {"name": "gone", "max_budget": 100}, MASTER)
        key_id, secret = str(created["id"]), str(created["key"])
        first = await abandon_stream(gateway.port, secret, "gone-mid-stream")
        assert first.startswith(b"HTTP/1.1 200 ") and b"data: " in first
        await asyncio.sleep(0.5)  # the gateway notices
        view = await http(gateway.port, "GET", f"/admin/keys/{key_id}", None, MASTER)
    finally:
        log = await asyncio.to_thread(gateway.stop)

    rows = await ledger_rows(sqlite_url(gateway))
    assert [(r.request_id, r.status, r.streamed, r.cut_short) for r in rows] == [
        ("gone-mid-stream", 499, True, True)
    ]
    cost = rows[0].cost
    # Something was delivered and is charged: the ledger and the budget agree on what.
    assert isinstance(cost, Decimal) and cost > 0
    assert Decimal(str(view["spend"])) == cost
    assert "Traceback" not in log and "never retrieved" not in log
