"""Answering a scrape: `GET /metrics` on the gateway's port, or on its own port (`CALCIFER_METRICS_PORT`)
served by a small HTTP/1.1 server in each worker (the port is shared with SO_REUSEPORT, and in
multiprocess mode any worker's answer covers them all). With `CALCIFER_METRICS_TOKEN` a scrape must
send `Authorization: Bearer <token>`. Gauges that describe shared state (budgets left, deployments
cooling down) are read when the scrape comes, by `refresh`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

from calcifer.observability.exposition import CONTENT_TYPE, authorized, render

_log = logging.getLogger("calcifer")
Refresh = Callable[[], Awaitable[None]]


async def exposition(registry: CollectorRegistry, refresh: Refresh | None) -> bytes:
    """Refresh the scrape-time gauges, then render (in a thread: a multiprocess merge reads files)."""
    if refresh is not None:
        try:
            await refresh()
        except Exception as error:  # a store that cannot be read leaves its gauges as they were
            _log.warning("metrics: refreshing gauges failed: %s", type(error).__name__)
    return await asyncio.to_thread(render, registry)


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics` on the gateway's own port."""
    state = request.app.state
    if not authorized(state.settings.metrics_token, request.headers.get("authorization")):
        return Response(
            "Unauthorized\n",
            401,
            media_type="text/plain",
            headers={"www-authenticate": 'Bearer realm="metrics"'},
        )
    body = await exposition(state.metrics.registry, getattr(state, "metrics_refresh", None))
    return Response(body, media_type=CONTENT_TYPE)


class MetricsServer:
    """`GET /metrics` (and nothing else) on its own port."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, token: str | None, refresh: Refresh | None
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._token = token
        self._refresh = refresh
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, reuse_port=True, limit=16 * 1024
        )

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target = [*lines[0].split(" "), "", ""][:2]
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            )
            if target.split("?", 1)[0] != "/metrics":
                status, body, kind = "404 Not Found", b"Not Found\n", "text/plain"
            elif method not in ("GET", "HEAD"):
                status, body, kind = "405 Method Not Allowed", b"Method Not Allowed\n", "text/plain"
            elif not authorized(self._token, headers.get("authorization")):
                status, body, kind = "401 Unauthorized", b"Unauthorized\n", "text/plain"
            else:
                status, kind = "200 OK", CONTENT_TYPE
                body = await exposition(self._registry, self._refresh)
            extra = 'WWW-Authenticate: Bearer realm="metrics"\r\n' if status.startswith("401") else ""
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
