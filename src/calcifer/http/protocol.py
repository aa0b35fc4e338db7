"""uvicorn's httptools protocol, with a response's head and body sent in one system call.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`,
then the body in a second write: two system calls (and two TCP segments) for every JSON answer, a
seventh of the gateway's CPU per request in the benchmark's profile. Here the head is held until the
next write, which joins it; a head that nothing follows within the same event-loop step (a stream
waiting for its first event) goes out alone on the next step. The order of the bytes never changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "


class _HeadHoldingTransport:
    """A transport that holds a written response head until the next write (or the next loop step)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(_HEAD):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadJoiningProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through a `_HeadHoldingTransport`; everything else is uvicorn's."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _HeadHoldingTransport(transport, self.loop)  # type: ignore[assignment]
