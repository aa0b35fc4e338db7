"""Server-sent events out: an ASGI response that forwards events as they are produced.

It watches for the client going away and then cancels the producer at once (so the upstream request
is cancelled too), and bounds every write by the server's write timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.types import Message, Receive, Scope, Send

DONE = b"data: [DONE]\n\n"


def event(data: object) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class EventStream:
    """An ASGI response streaming `events` (already-encoded SSE frames) to the client. `on_close` is
    awaited once the events are closed, however the response ended (the client gone too)."""

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        headers: dict[str, str],
        write_timeout: float,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.events = events
        self.on_close = on_close
        self.write_timeout = write_timeout
        self.headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self.headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        watcher = asyncio.create_task(self._watch(receive, task))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            async for frame in self.events:
                async with asyncio.timeout(self.write_timeout):
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.disconnected or task is None:
                raise
            task.uncancel()
        except TimeoutError:
            self.disconnected = True  # the client stopped reading; give up on it
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            close = getattr(self.events, "aclose", None)
            try:
                if close is not None:
                    await close()
            finally:
                if self.on_close is not None:
                    await self.on_close()

    async def _watch(self, receive: Receive, task: asyncio.Task[object] | None) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if task is not None:
                    task.cancel()
                return
