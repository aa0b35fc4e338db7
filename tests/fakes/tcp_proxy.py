"""A TCP relay on loopback in front of a real server (PostgreSQL, Redis), that a test can cut and restore:
the server then looks unreachable to whoever connects through the relay, and reachable again."""

from __future__ import annotations

import asyncio
import contextlib

from tests.fakes.threaded import LoopThread, free_port


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.port = free_port()
        self._loop = LoopThread()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def restore(self) -> None:
        """Listen (again) on the same port."""

        async def listen() -> None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

        self._loop.run(listen())

    def cut(self) -> None:
        """Stop listening and drop every relayed connection."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._loop.run(close())

    def close(self) -> None:
        self.cut()
        self._loop.stop()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
