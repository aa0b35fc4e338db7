"""The upstream HTTP/1.1 client: keep-alive connection pools on asyncio protocols, parsed by httptools.

Every proxied request pays for its upstream call, and the general-purpose clients pay for features a
gateway never uses on that path (cookies, redirects, tracing, multipart, per-request URL and header
objects): in `bench/` the aiohttp client was a third of the gateway's CPU per request. This client does
what the providers need and no more:

- one pool of idle keep-alive connections per origin (scheme, host, port), newest first, closed after
  `keepalive` idle seconds; TLS with the system's certificate store for `https` URLs;
- a request is written in one `write` (request line, headers and body together);
- the answer is parsed by httptools (llhttp, the parser of Node.js): status, headers (names lower-cased,
  repeats joined with ", "), a body by Content-Length, chunked, or until close; gzip and deflate are
  decoded if a server sends them although none was asked for;
- `read()` waits for the whole body; `iter_any()` yields pieces as the network delivers them, reading
  paused while more than `_HIGH_WATER` bytes wait for a slow consumer;
- deadlines: `connect` for opening a connection, `read` between two pieces of an answer, and an
  optional `total` for the whole request; each raises `TimeoutError`;
- failures raise `ConnectError` (could not connect or send) or `ResponseError` (the answer broke off or
  is not HTTP). A reused connection that the server closed before answering any byte is retried once
  on a new connection: the request never reached the server.

A connection goes back to its pool only when its answer was read to the end and both sides allow
keep-alive; an answer abandoned halfway (a cancelled stream) closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from calcifer.providers.connection import (
    ClientError,
    ConnectError,
    Connection,
    Origin,
    Response,
    ResponseError,
    StaleConnection,
    header_lines,
    parse_origin,
)
from calcifer.runtime.tracecontext import UPSTREAM_TRACEPARENT

__all__ = ["ClientError", "ConnectError", "HttpClient", "Response", "ResponseError"]
_USER_AGENT: Final = "calcifer"


class _Exchange:
    """`async with client.post(...) as response`: sends on enter, releases the connection on exit."""

    __slots__ = ("_client", "_connection", "_data", "_origin", "_total")

    def __init__(self, client: HttpClient, origin: Origin, data: bytes, total: float | None) -> None:
        self._client = client
        self._origin = origin
        self._data = data
        self._total = total
        self._connection: Connection | None = None

    async def __aenter__(self) -> Response:
        client = self._client
        loop = asyncio.get_running_loop()
        deadline = None if self._total is None else loop.time() + self._total
        for _ in range(2):
            connection = await client.acquire(self._origin, deadline)
            self._connection = connection
            connection.send(self._data, client.read_timeout, deadline)
            try:
                while not connection.headers_done:
                    await connection.wait()
            except StaleConnection:
                continue
            except BaseException:
                connection.close()
                raise
            return Response(connection, connection.status, connection.headers)
        raise ConnectError("the upstream closed the connection twice before answering")

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        connection = self._connection
        if connection is not None:
            self._connection = None
            self._client.release(connection)


class HttpClient:
    """Pooled HTTP/1.1 connections to any number of origins, with headers sent on every request."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        keepalive: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        base = {"User-Agent": _USER_AGENT, **(headers or {})}
        self._headers = header_lines(base)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._keepalive = keepalive
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[Connection]] = {}
        self._hosts: dict[Origin, bytes] = {}
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        self._last_sweep = time.monotonic()
        self._closed = False

    def post(
        self,
        url: str,
        data: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> _Exchange:
        """POST `data` (JSON) to `url`; `timeout` bounds the whole request when given."""
        return self._exchange(b"POST", url, data, headers, timeout)

    def get(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> _Exchange:
        return self._exchange(b"GET", url, None, headers, timeout)

    def delete(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> _Exchange:
        return self._exchange(b"DELETE", url, None, headers, timeout)

    def _exchange(
        self,
        method: bytes,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> _Exchange:
        if self._closed:
            raise ConnectError("the client is closed")
        known = self._targets.get(url)
        if known is None:
            known = parse_origin(url)
            if len(self._targets) < 10_000:  # URLs carry model names; keep the cache bounded
                self._targets[url] = known
        origin, target = known
        host = self._hosts.get(origin)
        if host is None:
            scheme, name, port = origin
            default = 443 if scheme == "https" else 80
            name = f"[{name}]" if ":" in name else name  # an IPv6 literal
            host = (name if port == default else f"{name}:{port}").encode("idna")
            self._hosts[origin] = host
        parts = [method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n", self._headers]
        traceparent = UPSTREAM_TRACEPARENT.get()
        if traceparent is not None:
            parts += (b"traceparent: ", traceparent, b"\r\n")
        if headers:
            parts.append(header_lines(headers))
        if body is not None:
            parts += [b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body]
        else:
            parts.append(b"\r\n")
        return _Exchange(self, origin, b"".join(parts), timeout)

    async def acquire(self, origin: Origin, deadline: float | None) -> Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive:
                connection.reused = True
                return connection
            connection.close()
        return await self._connect(origin, deadline)

    async def _connect(self, origin: Origin, deadline: float | None) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        timeout = self.connect_timeout
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - loop.time()))
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(origin),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:  # an OSError too, but it is the connect deadline: let it say so
            raise
        except (OSError, ssl.SSLError) as error:
            raise ConnectError(f"could not connect: {type(error).__name__}") from error
        return connection

    def release(self, connection: Connection) -> None:
        if self._closed or not connection.reusable:
            connection.close()
            return
        now = time.monotonic()
        connection.idle_since = now
        self._idle.setdefault(connection.origin, deque()).append(connection)
        if now - self._last_sweep > self._keepalive / 2:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Close connections idle longer than `keepalive` (the oldest are at the left)."""
        self._last_sweep = now
        for idle in self._idle.values():
            while idle and (idle[0].closed or now - idle[0].idle_since >= self._keepalive):
                idle.popleft().close()

    @property
    def idle_connections(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        await asyncio.sleep(0)  # let the transports finish closing
