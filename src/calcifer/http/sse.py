"""Server-sent events out: an ASGI response that forwards events as they are produced.

It watches for the client going away and then cancels the producer at once (so the upstream request
is cancelled too), and bounds every write by the server's write timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import orjson
from starlette.types import Message, Receive, Scope, Send

from calcifer.runtime import deadlines

DONE = b"data: [DONE]\n\n"
_MAX_PENDING = 256  # frames buffered for a slow client before reading upstream pauses


def event(data: object) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def typed_event(data: Mapping[str, object]) -> bytes:
    """One event named by its `type`, as the Responses and Messages APIs stream them."""
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


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
        assert task is not None  # an ASGI app runs in a task
        watcher = asyncio.create_task(self._watch(receive, task))
        pending: list[bytes] = []
        ready = asyncio.Event()
        room = asyncio.Event()
        room.set()
        failure: list[BaseException] = []

        async def produce() -> None:
            # Frames are produced in a task of their own and written in batches: a burst of events
            # that arrived in one upstream read goes out in one write, not one system call each.
            try:
                async for frame in self.events:
                    pending.append(frame)
                    ready.set()
                    if len(pending) >= _MAX_PENDING:
                        room.clear()
                        await room.wait()  # the client reads slowly: stop reading upstream too
            except Exception as error:
                failure.append(error)
            finally:
                pending.append(b"")  # the end marker
                ready.set()

        producer: asyncio.Task[None] | None = None
        try:
            # The first frame goes out with the response head, in one write, before the producer task
            # starts: a stream's first byte does not wait for a task switch.
            first = b""
            try:
                first = await anext(self.events, b"")
            except Exception as error:
                failure.append(error)
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            if first:
                await self._write(send, first, task)
                producer = asyncio.create_task(produce())
                ended = False
                while not ended:
                    await ready.wait()
                    ready.clear()
                    ended = bool(pending) and pending[-1] == b""
                    body = b"".join(pending)
                    pending.clear()
                    room.set()
                    if body:
                        await self._write(send, body, task)
            if failure:
                raise failure[0]
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            task.uncancel()
        except TimeoutError:
            self.disconnected = True  # the client stopped reading; give up on it
        finally:
            for helper in (producer, watcher):
                if helper is None:
                    continue
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            close = getattr(self.events, "aclose", None)
            try:
                if close is not None:
                    await close()
            finally:
                if self.on_close is not None:
                    await self.on_close()

    async def _write(self, send: Send, body: bytes, task: asyncio.Task[object]) -> None:
        """Send `body`, or raise `TimeoutError` when the client has not taken it within the write
        timeout (a shared deadline sweeper, not a timer per write: see `deadlines`)."""
        with deadlines.for_loop().limit(task, self.write_timeout):
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _watch(self, receive: Receive, task: asyncio.Task[object]) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                task.cancel()
                return
