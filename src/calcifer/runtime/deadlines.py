"""Deadlines for awaits that nearly always finish at once (reading a request body, writing to a client,
waiting for an upstream's next bytes), watched by one sweeper task per event loop instead of a timer each.

A timer costs ~2 us on uvloop (`call_at` and `cancel`) and `asyncio.timeout` ~4 us: more than the rest
of reading a body, and paid on every read and write of a stream. Here an await registers its future
(a waiter, or the task itself) and deadline in a dict and leaves it when the await returns. The sweeper
wakes every quarter of the shortest timeout registered (at most every second, at least every
millisecond), so an await is cut within 1.25 times its timeout, and it stops while nothing is registered.
An expired waiter gets `TimeoutError`; an expired task is cancelled (its `done()` then says it expired):
a task must leave the table before it awaits anything else, so only the registered await is cut.
`limit()` does that for a task's awaits in a `with` block, and turns the cut into `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Any

_MAX_STEP = 1.0
_MIN_STEP = 0.001


class Deadlines:
    """The deadlines of one event loop (`for_loop()` gives the running loop's)."""

    def __init__(self) -> None:  # no reference to the loop: the table is weakly keyed by it
        self._pending: dict[asyncio.Future[Any], tuple[float, float]] = {}
        self._expired: set[asyncio.Future[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._step = _MAX_STEP

    def add(self, waiter: asyncio.Future[Any], timeout: float) -> None:
        """Cut `waiter` (a future or a task of this loop) if it is still registered `timeout` s from now."""
        loop = waiter.get_loop()
        step = min(_MAX_STEP, max(_MIN_STEP, timeout / 4))
        self._pending[waiter] = (loop.time() + timeout, step)
        sweeper = self._sweeper
        if sweeper is None or sweeper.done() or step < self._step:
            if sweeper is not None:
                sweeper.cancel()
            self._step = step
            self._sweeper = loop.create_task(self._sweep(), name="calcifer-deadlines")

    def limit(self, task: asyncio.Task[Any], timeout: float) -> _Limit:
        """`with table.limit(task, timeout):` the awaits in the block (which must not outlive it) raise
        `TimeoutError` once `timeout` seconds have passed."""
        self.add(task, timeout)
        return _Limit(self, task)

    def done(self, waiter: asyncio.Future[Any]) -> bool:
        """Forget `waiter`; True when it was cut for missing its deadline."""
        self._pending.pop(waiter, None)
        if waiter in self._expired:
            self._expired.discard(waiter)
            return True
        return False

    async def _sweep(self) -> None:
        pending = self._pending
        loop = asyncio.get_running_loop()
        while pending:
            await asyncio.sleep(self._step)
            now = loop.time()
            step = _MAX_STEP
            for waiter, (deadline, grain) in list(pending.items()):
                if waiter.done():
                    del pending[waiter]
                elif deadline <= now:
                    del pending[waiter]
                    if isinstance(waiter, asyncio.Task):
                        self._expired.add(waiter)
                        waiter.cancel()
                    else:
                        waiter.set_exception(TimeoutError())
                elif grain < step:
                    step = grain
            self._step = step
        if self._sweeper is asyncio.current_task():
            self._sweeper = None  # a finished task would keep its loop, the table's key, alive


class _Limit:
    """The `with` block of `Deadlines.limit` (a plain class: it is entered on every body read and every
    stream write)."""

    __slots__ = ("_table", "_task")

    def __init__(self, table: Deadlines, task: asyncio.Task[Any]) -> None:
        self._table = table
        self._task = task

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._table.done(self._task) and kind is not None and issubclass(kind, asyncio.CancelledError):
            self._task.uncancel()
            raise TimeoutError from None


_tables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = weakref.WeakKeyDictionary()
_current: tuple[asyncio.AbstractEventLoop | None, Deadlines | None] = (None, None)


def for_loop() -> Deadlines:
    """The running loop's deadlines (each loop has its own table and sweeper: tests run several loops,
    some in threads)."""
    global _current
    loop = asyncio.get_running_loop()
    last, table = _current
    if last is loop and table is not None:
        return table
    table = _tables.get(loop)
    if table is None:
        table = Deadlines()
        _tables[loop] = table
    _current = (loop, table)
    return table
