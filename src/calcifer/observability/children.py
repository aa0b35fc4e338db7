"""Bound metric children, updated without prometheus_client's per-call wrapper.

`Counter.inc` and `Histogram.observe` check on every call that the metric is a labelled child, that the
amount is not negative and whether an exemplar came; `observe` then walks the buckets one by one. A
request updates a dozen values, so the gateway binds each child once and keeps its value objects:
`inc` is one call of the value's own `inc`, and a histogram finds its bucket by bisection.

In multiprocess mode (`--workers`) the value objects stay prometheus_client's: each update is written to
the worker's mmap file at once, so any worker's scrape sees every worker's requests. In one process
prometheus_client keeps each value as a float under its own lock (taking the lock is most of an
update's cost); there a bound child's values are replaced by `Cell`s, floats without a lock. That is
safe because each gateway's request metrics have one writer, its event loop, and a scrape only reads
them (a float is read whole under the GIL; a histogram read while a request is recorded may count it in
its buckets and not yet in its sum, as it may with the locks, which are per value, not per histogram).
This reads and replaces attributes prometheus_client does not document (`_value`, `_sum`, `_buckets`,
`_upper_bounds`); `requirements.lock` pins its version and the metrics tests scrape every value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, values

Inc = Callable[[float], None]


class Cell:
    """A float with one writer: prometheus_client's in-process value without its lock."""

    __slots__ = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def inc(self, amount: float) -> None:
        self.value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.value = value

    def get(self) -> float:
        return self.value

    def set_exemplar(self, exemplar: object) -> None:
        pass  # the gateway records no exemplars

    def get_exemplar(self) -> None:
        return None


def _unlocked(value: Any) -> Any:
    """`value`, or a `Cell` holding its count when it is the in-process locked float."""
    kind: object = type(value)
    return Cell(value.get()) if kind is values.MutexValue else value


def counter(child: Counter) -> Inc:
    """`child.inc`, for an amount the caller knows is not negative."""
    bound: Any = child
    bound._value = _unlocked(bound._value)
    inc: Inc = bound._value.inc
    return inc


class HistogramChild:
    """A histogram child's `observe`."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, child: Histogram) -> None:
        bound: Any = child
        bound._buckets[:] = [_unlocked(value) for value in bound._buckets]
        bound._sum = _unlocked(bound._sum)
        self._bounds: list[float] = bound._upper_bounds  # ends with +Inf
        self._buckets: list[Inc] = [value.inc for value in bound._buckets]
        self._sum: Inc = bound._sum.inc

    def observe(self, amount: float) -> None:
        # The first bucket whose upper bound is >= amount, as `Histogram.observe` picks it.
        self._buckets[bisect_left(self._bounds, amount)](1)
        self._sum(amount)


class Tally:
    """A gauge of things under way (`inc` as one starts, `dec` as it ends)."""

    __slots__ = ("_inc",)

    def __init__(self, gauge: Gauge) -> None:
        bound: Any = gauge
        bound._value = _unlocked(bound._value)
        self._inc: Inc = bound._value.inc

    def inc(self) -> None:
        self._inc(1)

    def dec(self) -> None:
        self._inc(-1)
