"""The head-joining transport: a response head waits for the next write, and byte order never changes."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn
from tests.fakes.threaded import free_port

from calcifer.http.protocol import HeadJoiningProtocol, _HeadHoldingTransport


class Recorder:
    """Stands in for the socket transport: records each write as the kernel would see it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def test_head_and_body_go_out_in_one_write() -> None:
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [HEAD + b"{}"]
    transport.write(b"more")  # no head held: straight through
    assert recorder.writes == [HEAD + b"{}", b"more"]
    await asyncio.sleep(0)  # the fallback flush finds nothing held
    assert len(recorder.writes) == 2


async def test_a_lone_head_goes_out_on_the_next_loop_step() -> None:
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert recorder.writes == [HEAD]
    transport.write(b"data: 1\n\n")
    assert recorder.writes == [HEAD, b"data: 1\n\n"]


async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.close()
    assert recorder.writes == [HEAD] and recorder.closed and transport.is_closing()
    other = Recorder()
    aborting = _HeadHoldingTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    aborting.write(HEAD)
    aborting.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


async def _app(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    body = b'{"ok":true}'
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]}
    await send(start)  # type: ignore[operator]
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


def test_uvicorn_serves_keep_alive_requests_through_it() -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            _app,
            host="127.0.0.1",
            port=port,
            http=HeadJoiningProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
        )
    )

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request * 2)  # two pipelined requests on one connection
            received = b""
            while received.count(b'{"ok":true}') < 2:
                piece = sock.recv(65536)
                assert piece, "the server closed the connection"
                received += piece
        first, second = received.split(b"HTTP/1.1 200 OK\r\n")[1:]
        assert first.endswith(b'\r\n\r\n{"ok":true}') and second.endswith(b'\r\n\r\n{"ok":true}')
    finally:
        server.should_exit = True
        thread.join(10)
