"""Draining: what a serving process does between SIGTERM and its exit, in the order a load balancer needs.

The server (uvicorn) owns the signals: on SIGTERM it stops accepting connections, lets the requests and
streams in flight finish within the grace (`CALCIFER_SHUTDOWN_GRACE`), then runs the app's shutdown,
which drains the ledger and the log. `Drain` stands in front of the server's handler: readiness fails
the moment the signal arrives, and the server hears of it only `pause` seconds later
(`CALCIFER_SHUTDOWN_DELAY`), so that a load balancer that polls readiness stops sending new requests
before the port closes. A second SIGTERM, and SIGINT (Ctrl+C), reach the server at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_log = logging.getLogger("calcifer")
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SignalHandler = Callable[[int, FrameType | None], Any]


class Drain:
    """Whether this process is draining, and the signal handlers that start it."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.draining = False
        self._installed: dict[int, tuple[SignalHandler, SignalHandler]] = {}

    def install(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Stand in front of the server's SIGTERM and SIGINT handlers. Only a handler written in Python
        (the server's) is taken over, and only from the main thread (where signals are handled); True
        when one was."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for number in _SIGNALS:
            previous = signal.getsignal(number)
            if callable(previous) and number not in self._installed:
                mine = self._in_front_of(previous, loop)
                signal.signal(number, mine)
                self._installed[number] = (previous, mine)
        return bool(self._installed)

    def uninstall(self) -> None:
        """Give the signals back to the handlers found by `install` (unless someone replaced ours since)."""
        for number, (previous, mine) in self._installed.items():
            if signal.getsignal(number) is mine:
                signal.signal(number, previous)
        self._installed.clear()

    def _in_front_of(self, previous: SignalHandler, loop: asyncio.AbstractEventLoop) -> SignalHandler:
        def handle(number: int, frame: FrameType | None) -> None:
            # A signal handler runs between two bytecodes of whatever the main thread was doing: it only
            # sets the flag and hands the rest to the event loop (thread-safe, and wakes it up).
            first = not self.draining
            self.draining = True
            if first and number == signal.SIGTERM and self.pause > 0:
                loop.call_soon_threadsafe(self._paused, loop, previous, number)
            else:
                previous(number, frame)

        return handle

    def _paused(self, loop: asyncio.AbstractEventLoop, previous: SignalHandler, number: int) -> None:
        _log.info("draining: readiness fails now; the server stops accepting in %gs", self.pause)
        loop.call_later(self.pause, previous, number, None)
