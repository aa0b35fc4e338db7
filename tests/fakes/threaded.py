"""Run an aiohttp or ASGI server on a loopback port in a background thread, for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from aiohttp import web
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class AiohttpServer:
    """An aiohttp.web application served on 127.0.0.1 from its own thread."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = LoopThread()
        self.port = free_port()
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)

        async def start() -> None:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()

        self._loop.run(start())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return self._loop.run(fn())

    def close(self) -> None:
        self._loop.run(self._runner.cleanup())
        self._loop.stop()


class AsgiServer:
    """A real uvicorn server (uvloop-free, h11-free: httptools) for an ASGI app, in its own thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            log_config=None,
            access_log=False,
            http="httptools",
            loop="asyncio",
            timeout_graceful_shutdown=2,
            proxy_headers=False,  # as `calcifer serve`: X-Forwarded-For never rewrites the client address
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60  # generous: on a loaded machine start-up takes seconds
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:  # pragma: no cover - diagnostic
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free loopback port in the running loop: its runner (to clean up) and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"
