"""A small round-robin load balancer on loopback for fleet tests, working as a Kubernetes Service or
nginx's stream module does: each client connection goes to the next backend that is ready.

Readiness is each backend's `GET /health/ready`, polled every `poll` seconds; a backend that is not ready
gets no new connections. A backend that refuses the connection (it stopped listening) is skipped for the
next one, which is safe: nothing was sent to it. Bytes are relayed as they come (streams unbuffered). For
each request it records which backend got it and when (by the request's `x-request-id`), so a test can
tell which requests were in flight on a replica when it was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass

from tests.fakes.threaded import LoopThread, free_port

_REQUEST_ID = re.compile(rb"\r\nx-request-id:\s*([^\r\n]+)", re.IGNORECASE)


@dataclass(slots=True)
class Relay:
    """One client connection relayed to `backend` (its port), from `started` to `ended` (monotonic)."""

    backend: int
    started: float
    ended: float | None = None

    def open_at(self, moment: float) -> bool:
        """Whether the relay was still open at `moment` (or opened after it)."""
        return self.ended is None or self.ended >= moment


class RoundRobinBalancer:
    def __init__(self, backends: list[int], *, poll: float = 0.1) -> None:
        self.port = free_port()
        self.backends = list(backends)
        self.relays: dict[str, Relay] = {}  # by request id
        self.refused = 0  # connections a backend refused, moved on to the next one
        self._ready = dict.fromkeys(self.backends, False)
        self._poll = poll
        self._turn = 0
        self._loop = LoopThread()
        self._loop.run(self._start())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> set[int]:
        return {port for port, ready in self._ready.items() if ready}

    async def wait_ready(self, expected: set[int], timeout: float = 60) -> None:
        """Wait until exactly `expected` backends are in rotation (or fail after `timeout` seconds)."""

        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.ready() == expected)

        waiting = asyncio.run_coroutine_threadsafe(until(), self._loop.loop)
        await asyncio.wait_for(asyncio.wrap_future(waiting), timeout)

    def close(self) -> None:
        async def stop() -> None:
            self._poller.cancel()
            self._server.close()

        self._loop.run(stop())
        self._loop.stop()

    async def _start(self) -> None:
        self._changed = asyncio.Condition()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, backlog=1024)
        self._poller = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        while True:
            results = await asyncio.gather(*(_is_ready(port) for port in self.backends))
            async with self._changed:
                self._ready = dict(zip(self.backends, results, strict=True))
                self._changed.notify_all()
            await asyncio.sleep(self._poll)

    def _rotation(self) -> list[int]:
        ready = [port for port in self.backends if self._ready[port]]
        self._turn += 1
        if not ready:
            return []
        first = self._turn % len(ready)
        return ready[first:] + ready[:first]

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        head = await client_reader.read(65536)  # the request's head comes first
        for port in self._rotation():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                self.refused += 1
                continue
            break
        else:
            client_writer.transport.abort()
            return
        relay = Relay(port, time.monotonic())
        found = _REQUEST_ID.search(head)
        if found:
            self.relays[found.group(1).decode().strip()] = relay
        writer.write(head)
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))
        relay.ended = time.monotonic()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the end of `reader`, then close `writer` (after what it holds is sent); on a reset,
    reset `writer` too, as the peer's failure would show through a real balancer."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        writer.transport.abort()
        return
    with contextlib.suppress(OSError):
        writer.close()
        await writer.wait_closed()


async def _is_ready(port: int) -> bool:
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /health/ready HTTP/1.1\r\nHost: balancer\r\nConnection: close\r\n\r\n")
                status = await reader.readline()
            finally:
                writer.transport.abort()
    except (OSError, TimeoutError):
        return False
    return status.split(b" ")[1:2] == [b"200"]
