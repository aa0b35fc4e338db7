"""The upstream HTTP/1.1 client against real loopback servers that send exactly the bytes under test."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from calcifer.providers.client import ConnectError, HttpClient, ResponseError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Upstream:
    """A loopback server whose handler sees each connection; it counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""
        self.tls: ssl.SSLContext | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/v1/chat?x=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def answering(*answers: bytes, then_close: bool = False) -> Callable[[Upstream], Handler]:
    """A handler that answers each request on a connection with the next of `answers` (the last
    one repeats)."""

    def make(upstream: Upstream) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = 0
            while True:
                await upstream.read_request(reader)
                writer.write(answers[min(index, len(answers) - 1)])
                await writer.drain()
                index += 1
                if then_close:
                    return

        return handle

    return make


async def serve(make: Callable[[Upstream], Handler]) -> Upstream:
    upstream = Upstream(lambda r, w: asyncio.sleep(0))
    upstream.handler = make(upstream)
    return upstream


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"}, read_timeout=5
    )
    yield http
    await http.close()


async def test_request_is_sent_whole_and_json_answer_read(client: HttpClient) -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Thing: a\r\nx-thing: b\r\n"
        b'Content-Length: 11\r\n\r\n{"a": true}'
    )
    async with (
        await serve(answering(answer)) as upstream,
        client.post(upstream.url, b'{"q":1}', headers={"X-Extra": "1"}) as response,
    ):
        assert response.status == 201
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-thing"] == "a, b"
        assert await response.read() == b'{"a": true}'
    request = upstream.requests[0]
    head, body = request.split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{upstream.url.split(':')[2].split('/')[0]}".encode() in lines
    assert b"Authorization: Bearer k" in lines and b"X-Extra: 1" in lines
    assert b"Content-Length: 7" in lines and body == b'{"q":1}'
    assert not any(line.lower().startswith(b"accept-encoding") for line in lines)


async def test_keep_alive_reuses_one_connection(client: HttpClient) -> None:
    async with await serve(answering(OK)) as upstream:
        for _ in range(3):
            async with client.post(upstream.url, b"{}") as response:
                assert await response.read() == b"{}"
        assert client.idle_connections == 1
    assert upstream.connections == 1 and len(upstream.requests) == 3


async def test_connection_close_is_not_reused(client: HttpClient) -> None:
    closing = OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")
    async with await serve(answering(closing, then_close=True)) as upstream:
        for _ in range(2):
            async with client.post(upstream.url, b"{}") as response:
                assert await response.read() == b"{}"
    assert upstream.connections == 2 and client.idle_connections == 0


async def test_idle_connections_expire() -> None:
    http = HttpClient(keepalive=0.05)
    try:
        async with await serve(answering(OK)) as upstream:
            for _ in range(2):
                async with http.post(upstream.url, b"{}") as response:
                    await response.read()
                await asyncio.sleep(0.1)
        assert upstream.connections == 2
    finally:
        await http.close()


async def test_chunked_pieces_arrive_as_sent(client: HttpClient) -> None:
    go_on = asyncio.Event()

    def make(upstream: Upstream) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await go_on.wait()  # the second piece only after the client saw the first
            writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
            await writer.drain()
            await reader.read()

        return handle

    async with await serve(make) as upstream, client.post(upstream.url, b"{}") as response:
        pieces = []
        async for piece in response.iter_any():
            pieces.append(piece)
            go_on.set()
    assert pieces == [b"first", b"second"]
    assert client.idle_connections == 1


async def test_gzip_body_is_decoded(client: HttpClient) -> None:
    packed = gzip.compress(b'{"big": "' + b"x" * 5000 + b'"}')
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed
    async with await serve(answering(answer)) as upstream, client.post(upstream.url, b"{}") as response:
        assert await response.read() == b'{"big": "' + b"x" * 5000 + b'"}'


async def test_unasked_encoding_is_refused(client: HttpClient) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}"
    async with await serve(answering(answer)) as upstream:
        with pytest.raises(ResponseError, match="br"):
            async with client.post(upstream.url, b"{}") as response:
                await response.read()


async def test_body_until_close(client: HttpClient) -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    async with (
        await serve(answering(answer, then_close=True)) as upstream,
        client.post(upstream.url, b"{}") as response,
    ):
        assert await response.read() == b"all of it"
    assert client.idle_connections == 0


async def test_answer_cut_short_is_a_response_error(client: HttpClient) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"
    async with await serve(answering(answer, then_close=True)) as upstream:
        with pytest.raises(ResponseError, match="closed the connection"):
            async with client.post(upstream.url, b"{}") as response:
                await response.read()


async def test_garbage_is_a_response_error(client: HttpClient) -> None:
    async with await serve(answering(b"SMTP ready\r\n\r\n")) as upstream:
        with pytest.raises(ResponseError, match="not valid HTTP"):
            async with client.post(upstream.url, b"{}"):
                pass


async def test_server_closing_a_reused_connection_is_retried_once(client: HttpClient) -> None:
    def make(upstream: Upstream) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await upstream.read_request(reader)
            writer.write(OK)
            await writer.drain()
            if upstream.connections == 1:
                await upstream.read_request(reader)  # the next request on this connection: hang up
                return
            await reader.read()

        return handle

    async with await serve(make) as upstream:
        for _ in range(2):
            async with client.post(upstream.url, b"{}") as response:
                assert await response.read() == b"{}"
    assert upstream.connections == 2


async def test_read_timeout_and_total_deadline() -> None:
    def make(upstream: Upstream) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):  # one byte every 20 ms: each read is quick, the whole is slow
                await asyncio.sleep(0.02)
                writer.write(b"x")
            await reader.read()

        return handle

    http = HttpClient(read_timeout=0.01)
    try:
        async with await serve(make) as upstream:
            with pytest.raises(TimeoutError):
                async with http.post(upstream.url, b"{}") as response:
                    await response.read()
            http.read_timeout = 1.0
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                async with http.post(upstream.url, b"{}", timeout=0.2) as response:
                    await response.read()
            assert loop.time() - started < 1.0
        assert http.idle_connections == 0
    finally:
        await http.close()


async def test_refused_connection_is_a_connect_error(client: HttpClient) -> None:
    upstream = await serve(answering(OK))
    async with upstream:
        url = upstream.url
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectError, match="could not connect"):
        async with client.post(url, b"{}"):
            pass


def test_header_injection_and_bad_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HttpClient(headers={"Authorization": "Bearer k\r\nX-Evil: 1"})
    http = HttpClient()
    with pytest.raises(ValueError, match="line break"):
        http.post("http://127.0.0.1:1/", b"{}", headers={"X-A": "1\n2"})
    with pytest.raises(ValueError, match="http"):
        http.post("ftp://example.com/", b"{}")


async def test_abandoned_stream_closes_its_connection(client: HttpClient) -> None:
    def make(upstream: Upstream) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await upstream.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
            await writer.drain()
            await reader.read()

        return handle

    async with await serve(make) as upstream, client.post(upstream.url, b"{}") as response:
        async for _piece in response.iter_any():
            break
    assert client.idle_connections == 0


async def test_large_body_through_flow_control(client: HttpClient) -> None:
    body = bytes(range(256)) * 16384  # 4 MiB, more than the client buffers before pausing
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    async with await serve(answering(answer)) as upstream:
        async with client.post(upstream.url, b"{}") as response:
            assert await response.read() == body
        async with client.post(upstream.url, b"{}") as response:
            received = b"".join([piece async for piece in response.iter_any()])
            assert received == body
    assert upstream.connections == 1


async def test_tls_upstream_checked_against_the_trust_store() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    upstream = await serve(answering(OK))
    upstream.tls = server_context
    async with upstream:
        http = HttpClient(ssl_context=trusting)
        try:
            async with http.post(upstream.url, b"{}") as response:
                assert upstream.url.startswith("https://")
                assert await response.read() == b"{}"
        finally:
            await http.close()
        default = HttpClient()  # the system's store does not know this CA
        try:
            with pytest.raises(ConnectError, match="SSL"):
                async with default.post(upstream.url, b"{}"):
                    pass
        finally:
            await default.close()
