"""The shared deadline sweeper: what it cuts, how late at most, and what it leaves alone."""

from __future__ import annotations

import asyncio

import pytest

from calcifer.runtime import deadlines


async def test_a_waiter_past_its_deadline_gets_a_timeout_error_within_a_quarter_of_its_timeout() -> None:
    loop = asyncio.get_running_loop()
    watch = deadlines.for_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    started = loop.time()
    watch.add(waiter, 0.2)
    with pytest.raises(TimeoutError):
        await waiter
    took = loop.time() - started
    assert 0.2 <= took < 0.2 * 1.25 + 0.1
    assert watch.done(waiter) is False  # futures are cut by their exception, not marked


async def test_a_task_past_its_deadline_is_cancelled_and_marked_expired() -> None:
    watch = deadlines.for_loop()
    never = asyncio.Event()

    async def slow() -> str:
        task = asyncio.current_task()
        assert task is not None
        watch.add(task, 0.1)
        try:
            await never.wait()
        except asyncio.CancelledError:
            if watch.done(task):
                task.uncancel()
                return "expired"
            raise
        return "woken"

    assert await slow() == "expired"


async def test_an_await_that_finishes_in_time_is_left_alone_and_the_sweeper_stops() -> None:
    loop = asyncio.get_running_loop()
    watch = deadlines.for_loop()
    waiter: asyncio.Future[str] = loop.create_future()
    watch.add(waiter, 0.05)
    loop.call_soon(waiter.set_result, "in time")
    assert await waiter == "in time"
    assert watch.done(waiter) is False
    await asyncio.sleep(0.1)  # past the deadline: nothing is cut, and nothing is left to watch
    assert watch._sweeper is None  # the finished sweeper let go of its loop


async def test_a_short_timeout_added_while_the_sweeper_sleeps_long_is_still_kept() -> None:
    loop = asyncio.get_running_loop()
    watch = deadlines.for_loop()
    long: asyncio.Future[None] = loop.create_future()
    short: asyncio.Future[None] = loop.create_future()
    watch.add(long, 30.0)  # the sweeper now sleeps a second at a time
    started = loop.time()
    watch.add(short, 0.1)
    with pytest.raises(TimeoutError):
        await short
    assert loop.time() - started < 0.5
    assert not long.done()
    watch.done(long)


def test_each_event_loop_has_its_own_table() -> None:
    async def table() -> deadlines.Deadlines:
        return deadlines.for_loop()

    first = asyncio.run(table())
    second = asyncio.run(table())
    assert first is not second

    async def same() -> bool:
        return deadlines.for_loop() is deadlines.for_loop()

    assert asyncio.run(same())
