"""The floor: a bare OpenAI proxy with no routing, pricing or ledger (raw ASGI, orjson, pooled client).

`BARE_UPSTREAM=http://127.0.0.1:9100/v1 uvicorn bench.bare_proxy:app --loop uvloop --http httptools`;
`BARE_CLIENT=httpx` swaps aiohttp for httpx2 (the httpx line), `BARE_CLIENT=calcifer` for Calcifer's own
upstream client (`calcifer.providers.client`); granian serves the same `app`.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import orjson

_URL = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9100/v1").rstrip("/") + "/chat/completions"
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_clients: dict[str, Any] = {}  # the one pooled client, made at lifespan start-up


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            kind = os.environ.get("BARE_CLIENT", "aiohttp")
            if kind == "calcifer":
                from calcifer.providers.client import HttpClient

                _clients["calcifer"] = HttpClient(headers=_HEADERS)
            elif kind == "httpx":
                import httpx2

                limits = httpx2.Limits(max_connections=None, max_keepalive_connections=2000)
                _clients["httpx"] = httpx2.AsyncClient(headers=_HEADERS, limits=limits, timeout=60.0)
            else:
                connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0)
                _clients["aiohttp"] = aiohttp.ClientSession(connector=connector, headers=_HEADERS)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for client in _clients.values():
                await (client.aclose() if "httpx" in _clients else client.close())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    stream = orjson.loads(body).get("stream") is True
    if "httpx" in _clients:
        async with _clients["httpx"].stream("POST", _URL, content=body) as response:
            await _relay(send, response.status_code, stream, response.aiter_raw(), response.aread)
    elif "calcifer" in _clients:
        async with _clients["calcifer"].post(_URL, body) as response:
            await _relay(send, response.status, stream, response.iter_any(), response.read)
    else:
        async with _clients["aiohttp"].post(_URL, data=body) as response:
            await _relay(send, response.status, stream, response.content.iter_any(), response.read)


async def _relay(send: Any, status: int, stream: bool, chunks: Any, read: Any) -> None:
    if not stream:  # one body with a content-length
        data = await read()
        headers = [*_JSON, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return
    await send({"type": "http.response.start", "status": status, "headers": _SSE})
    async for chunk in chunks:  # each piece as it arrives
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
