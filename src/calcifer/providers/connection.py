"""One upstream HTTP/1.1 connection: an asyncio protocol parsed by httptools, and the `Response` read
from it. The pool that owns connections, and what the client does and why, is `client.HttpClient`."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

from calcifer.runtime import deadlines

_HIGH_WATER: Final = 1 << 20  # pause reading while this many bytes wait for the consumer


class ClientError(Exception):
    """An upstream call failed below HTTP: see `ConnectError` and `ResponseError`."""


class ConnectError(ClientError):
    """The connection could not be opened, or the request could not be sent."""


class ResponseError(ClientError):
    """The answer broke off before its end, or is not valid HTTP/1.1."""


Origin = tuple[str, str, int]


def parse_origin(url: str) -> tuple[Origin, bytes]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname, port), target.encode("ascii")


def header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0") or not name:
            raise ValueError(f"header {name!r} has a line break or is empty")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Response:
    """An upstream answer: `status` and `headers` at once, the body by `read()` or `iter_any()`."""

    __slots__ = ("_connection", "headers", "status")

    def __init__(self, connection: Connection, status: int, headers: dict[str, str]) -> None:
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


class Connection(asyncio.Protocol):
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
            self._fail(StaleConnection())
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


class StaleConnection(ConnectError):
    """A reused connection the server had closed: the request never reached it."""

    def __init__(self) -> None:
        super().__init__("the upstream closed an idle connection")
