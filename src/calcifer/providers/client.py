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
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

from calcifer import deadlines

_HIGH_WATER: Final = 1 << 20  # pause reading while this many bytes wait for the consumer
_USER_AGENT: Final = "calcifer"


class ClientError(Exception):
    """An upstream call failed below HTTP: see `ConnectError` and `ResponseError`."""


class ConnectError(ClientError):
    """The connection could not be opened, or the request could not be sent."""


class ResponseError(ClientError):
    """The answer broke off before its end, or is not valid HTTP/1.1."""


Origin = tuple[str, str, int]


def _origin(url: str) -> tuple[Origin, bytes]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname, port), target.encode("ascii")


def _header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0") or not name:
            raise ValueError(f"header {name!r} has a line break or is empty")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Response:
    """An upstream answer: `status` and `headers` at once, the body by `read()` or `iter_any()`."""

    __slots__ = ("_connection", "headers", "status")

    def __init__(self, connection: _Connection, status: int, headers: dict[str, str]) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers

    async def read(self) -> bytes:
        """The whole body (decoded when the server compressed it)."""
        connection = self._connection
        while not connection.complete:
            await connection.wait()
        return connection.take()

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body in the pieces the network delivers, as they arrive."""
        connection = self._connection
        while True:
            piece = connection.take()
            if piece:
                yield piece
            elif connection.complete:
                return
            else:
                await connection.wait()


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is receiving."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._paused = False
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._begin()

    def _begin(self) -> None:
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self.headers_done = False
        self.complete = False
        self.received_any = False
        self._keep_alive = False
        self._until_close = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._decoder: zlib._Decompress | None = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self._read_timeout = 0.0
        self._deadline: float | None = None

    # Sending.

    def send(self, data: bytes, read_timeout: float, deadline: float | None) -> None:
        self._begin()
        self._read_timeout = read_timeout
        self._deadline = deadline
        assert self._transport is not None
        self._transport.write(data)

    # Waiting, with the read and total deadlines.

    async def wait(self) -> None:
        """Until the answer moves on (headers, a piece of body, its end or an error)."""
        if self._error is not None:
            raise self._error
        self._resume()
        waiter = self._loop.create_future()
        self._waiter = waiter
        timeout = self._read_timeout
        if self._deadline is not None:
            timeout = min(timeout, self._deadline - self._loop.time())
        watch = deadlines.for_loop()  # a shared sweeper: a timer per wait cost ~2 us on uvloop
        watch.add(waiter, timeout)
        try:
            await waiter
        finally:
            watch.done(waiter)
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> bytes:
        """The body received so far and not yet taken."""
        if self._error is not None:
            raise self._error
        if not self._body:
            return b""
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        self._resume()
        return body

    def _resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            cause = error.__context__  # what one of the callbacks below raised, if that was it
            if not isinstance(cause, ResponseError):
                cause = ResponseError(f"the upstream's answer is not valid HTTP: {error}")
            self._fail(cause)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        if self.complete:
            return
        if self.headers_done and self._until_close:
            self._finish()
            return
        if not self.received_any and self.reused:
            self._fail(_StaleConnection())
        else:
            self._fail(ResponseError("the upstream closed the connection before the answer ended"))

    # httptools callbacks.

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        self._values.append(value)

    def on_headers_complete(self) -> None:
        headers: dict[str, str] = {}
        for raw_name, raw_value in zip(self._names, self._values, strict=True):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.status = self._parser.get_status_code()
        self.headers = headers
        self.headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        self._until_close = "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("identity", ""):
            raise ResponseError(f"the upstream sent a body in an encoding not asked for: {encoding}")
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error as error:
                raise ResponseError(f"the upstream's compressed body is broken: {error}") from None
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._body.append(rest)
        self._finish()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # Pool life.

    @property
    def reusable(self) -> bool:
        return self.complete and self._keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _StaleConnection(ConnectError):
    """A reused connection the server had closed: the request never reached it."""

    def __init__(self) -> None:
        super().__init__("the upstream closed an idle connection")


class _Exchange:
    """`async with client.post(...) as response`: sends on enter, releases the connection on exit."""

    __slots__ = ("_client", "_connection", "_data", "_origin", "_total")

    def __init__(self, client: HttpClient, origin: Origin, data: bytes, total: float | None) -> None:
        self._client = client
        self._origin = origin
        self._data = data
        self._total = total
        self._connection: _Connection | None = None

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
            except _StaleConnection:
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
        self._headers = _header_lines(base)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._keepalive = keepalive
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
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
            known = _origin(url)
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
        if headers:
            parts.append(_header_lines(headers))
        if body is not None:
            parts += [b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body]
        else:
            parts.append(b"\r\n")
        return _Exchange(self, origin, b"".join(parts), timeout)

    async def acquire(self, origin: Origin, deadline: float | None) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive:
                connection.reused = True
                return connection
            connection.close()
        return await self._connect(origin, deadline)

    async def _connect(self, origin: Origin, deadline: float | None) -> _Connection:
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
                    lambda: _Connection(origin),
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

    def release(self, connection: _Connection) -> None:
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
