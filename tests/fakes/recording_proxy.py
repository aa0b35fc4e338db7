"""A loopback reverse proxy that records what a client sends (method, path, query, headers and the body's
exact bytes) and relays each request to the gateway behind it, and the answer back as it streams: the
tests' view of a real client's requests, which no client lets a test see otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.fakes.threaded import AiohttpServer

# Hop-by-hop headers, and the encodings the proxy itself would have to undo.
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes


class RecordingProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.received: list[Recorded] = []
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self.server = AiohttpServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.close()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        self.received.append(
            Recorded(request.method, request.path, request.query_string, dict(request.headers), raw)
        )
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                request.method, self.target + request.path_qs, data=raw, headers=headers
            ) as upstream,
        ):
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED}
            response = web.StreamResponse(status=upstream.status, headers=kept)
            await response.prepare(request)
            async for piece in upstream.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response
