"""`Drain` in front of a server's signal handler, with real signals sent to this process."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import pytest

from calcifer.runtime.draining import Drain


class Server:
    """Stands for uvicorn: a Python signal handler that notes when it heard each signal."""

    def __init__(self) -> None:
        self.heard: list[tuple[int, float]] = []
        self._loop = asyncio.get_running_loop()
        self._news: asyncio.Queue[None] = asyncio.Queue()

    def handle_exit(self, number: int, frame: FrameType | None) -> None:
        self.heard.append((number, time.monotonic()))
        self._loop.call_soon_threadsafe(self._news.put_nowait, None)

    async def wait(self, count: int, timeout: float = 10) -> None:
        """Until the server has heard `count` signals."""
        async with asyncio.timeout(timeout):
            while len(self.heard) < count:
                await self._news.get()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    saved = {n: signal.signal(n, server.handle_exit) for n in (signal.SIGTERM, signal.SIGINT)}
    yield server
    for number, handler in saved.items():
        signal.signal(number, handler)


async def test_sigterm_fails_readiness_at_once_and_reaches_the_server_after_the_pause(server: Server) -> None:
    drain = Drain(pause=0.3)
    assert drain.install(asyncio.get_running_loop())
    sent = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0)
    assert drain.draining
    assert server.heard == []
    await server.wait(1)
    assert server.heard[0][0] == signal.SIGTERM
    assert server.heard[0][1] - sent >= 0.3
    # A second SIGTERM (an impatient operator) is not paused.
    os.kill(os.getpid(), signal.SIGTERM)
    await server.wait(2, timeout=0.2)
    drain.uninstall()
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


@pytest.mark.parametrize(("pause", "number"), [(0.0, signal.SIGTERM), (5.0, signal.SIGINT)])
async def test_without_a_pause_and_on_sigint_the_server_hears_at_once(
    server: Server, pause: float, number: int
) -> None:
    drain = Drain(pause=pause)
    drain.install(asyncio.get_running_loop())
    os.kill(os.getpid(), number)
    await server.wait(1, timeout=0.2)
    assert drain.draining and server.heard[0][0] == number
    drain.uninstall()


async def test_only_a_python_handler_in_the_main_thread_is_taken_over(server: Server) -> None:
    loop = asyncio.get_running_loop()
    found: list[bool] = []
    thread = threading.Thread(target=lambda: found.append(Drain(1).install(loop)))
    thread.start()
    thread.join()
    assert found == [False]
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert not Drain(1).install(loop)  # nobody to stand in front of
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_uninstall_leaves_a_handler_someone_else_set_since(server: Server) -> None:
    drain = Drain(pause=1)
    drain.install(asyncio.get_running_loop())

    def other(number: int, frame: Any) -> None: ...

    signal.signal(signal.SIGTERM, other)
    drain.uninstall()
    assert signal.getsignal(signal.SIGTERM) is other
    assert signal.getsignal(signal.SIGINT) == server.handle_exit
