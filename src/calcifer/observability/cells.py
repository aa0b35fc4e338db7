"""Request metrics in one process: plain number cells updated per request, reported at scrape time by a
custom collector (prometheus_client's documented `Collector` and `*MetricFamily` API).

A series is a list of numbers: a counter's is `[total]`, a histogram's is its sum and then one count per
bucket (not cumulative; the last bucket is `+Inf`), so that a bisection of `bounds` is a bucket's index
(indexes >= 0 take CPython's fast path for lists; -1 does not). Recording a request is a few list updates and
a bisection per histogram; building the exposition (cumulative buckets, counts, floats) waits for a
scrape. Counters keep the type they are fed: token counts stay ints and USD stays `Decimal` (exact,
like the ledger; a float only in the exposition).

Each gateway process's request metrics have one writer, its event loop; a scrape renders in another
thread and only reads: series are added under a lock (once per label combination), and a scrape copies
each series' list before reading it (a request recorded meanwhile may be in its buckets and not yet in
its sum, as with prometheus_client's per-value locks).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from calcifer.domain.types import StreamOutcome
from calcifer.observability.families import (
    DURATION_BUCKETS,
    HTTP_BUCKETS,
    OVERHEAD_BUCKETS,
    TOKEN_BUCKETS,
    TOKEN_TYPES,
    AnswerLabels,
    Facts,
    Family,
    chunk_times,
)

Cells = list[Any]  # ints, floats or Decimals: whatever the family is fed
INF = float("inf")


def bounds(buckets: tuple[float, ...]) -> tuple[float, ...]:
    """What a histogram's cells are bisected by: -Inf (the sum's place, which no amount >= 0 picks), its
    buckets' upper bounds and +Inf."""
    return (-INF, *map(float, buckets), INF)


_HTTP, _DURATION, _OVERHEAD, _TOKENS = map(
    bounds, (HTTP_BUCKETS, DURATION_BUCKETS, OVERHEAD_BUCKETS, TOKEN_BUCKETS)
)


def le(bound: float) -> str:
    """A bucket bound as Prometheus' Go clients (and prometheus_client) spell it: 1.0, 0.25, 1.048576e+06."""
    text = repr(float(bound))
    dot = text.find(".")
    if dot > 6:  # Go writes large numbers with an exponent sooner than Python's repr
        return f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.") + f"e+0{dot - 1}"
    return text


class Series:
    """One family's series in this process: label values to cells."""

    def __init__(self, family: Family, lock: threading.Lock) -> None:
        self.family = family
        self.bounds = bounds(family.buckets)
        self._width = len(self.bounds) if family.kind == "histogram" else 1
        self._les = [*map(le, family.buckets), "+Inf"]
        self._lock = lock
        self._cells: dict[tuple[str, ...], Cells] = {}

    def cells(self, labels: tuple[str, ...]) -> Cells:
        """The cells of the series with these label values (made, zero, the first time)."""
        found = self._cells.get(labels)
        if found is None:
            with self._lock:
                found = self._cells.setdefault(labels, [0] * self._width)
        return found

    def collect(self) -> Metric:
        family = self.family
        with self._lock:
            series = [(labels, list(cells)) for labels, cells in self._cells.items()]
        if family.kind == "histogram":
            histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
            for labels, cells in series:
                total, buckets = 0, []
                for name, count in zip(self._les, cells[1:], strict=True):
                    total += count
                    buckets.append((name, float(total)))
                histogram.add_metric(labels, buckets, float(cells[0]))
            return histogram
        kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
        metric = kind(family.name, family.help, labels=family.labels)
        for labels, cells in series:
            metric.add_metric(labels, float(cells[0]))
        return metric


def observe(cells: Cells, bounds: tuple[float, ...], amount: float) -> None:
    """One histogram observation: the first bucket whose bound is >= amount, as prometheus_client picks it."""
    cells[bisect_left(bounds, amount)] += 1
    cells[0] += amount


class RouteCells:
    """A request that called no model (or was answered from the cache, or refused): its count by route
    and status, its duration and (when it had an outcome) its overhead, by route."""

    __slots__ = ("_duration", "_overhead", "_requests")

    def __init__(self, series: dict[str, Series], route: str, status: str, extras: tuple[str, ...]) -> None:
        self._requests = series["requests"].cells((route, status, *extras))
        self._duration = series["request_duration"].cells((route,))
        self._overhead = series["overhead"].cells((route,))

    def record(self, seconds: float, overhead: float | None) -> None:
        self._requests[0] += 1
        observe(self._duration, _HTTP, seconds)
        if overhead is not None:
            observe(self._overhead, _OVERHEAD, overhead)


class AnswerCells:
    """A request a model answered, for one combination of its labels: every cell it updates, bound once,
    updated in one call (the bisections and additions written out: this is the per-request path)."""

    __slots__ = (
        "_attempts",
        "_cache_read",
        "_cache_write",
        "_cost",
        "_duration",
        "_first_chunk",
        "_input",
        "_input_tokens",
        "_operation",
        "_output",
        "_output_tokens",
        "_overhead",
        "_per_chunk",
        "_reasoning",
        "_requests",
        "_unpriced",
    )

    def __init__(self, series: dict[str, Series], labels: AnswerLabels) -> None:
        genai, provider, model, extras = labels.genai, labels.provider, labels.model, labels.extras
        self._requests = series["requests"].cells((labels.route, labels.status, *extras))
        self._duration = series["request_duration"].cells((labels.route,))
        self._overhead = series["overhead"].cells((labels.route,))
        self._operation = series["operation_duration"].cells((*genai, labels.error_type))
        self._input = series["token_usage"].cells((*genai, "input"))
        self._output = series["token_usage"].cells((*genai, "output"))
        self._first_chunk = series["time_to_first_chunk"].cells(genai)
        self._per_chunk = series["time_per_output_chunk"].cells(genai)
        self._cost = series["cost"].cells((provider, model, *extras))
        self._unpriced = series["unpriced"].cells((provider, model))
        self._attempts = series["attempts"].cells((provider,))
        tokens = series["tokens"]
        self._input_tokens, self._output_tokens, self._cache_read, self._cache_write, self._reasoning = (
            tokens.cells((provider, model, kind, *extras)) for kind in TOKEN_TYPES
        )

    def record(self, facts: Facts, outcome: StreamOutcome) -> None:
        seconds = facts.latency_ms / 1000
        self._requests[0] += 1
        cells = self._duration
        cells[bisect_left(_HTTP, seconds)] += 1
        cells[0] += seconds
        cells = self._operation
        cells[bisect_left(_DURATION, seconds)] += 1
        cells[0] += seconds
        upstream = outcome.upstream_seconds
        overhead = seconds - upstream if seconds > upstream else 0.0
        cells = self._overhead
        cells[bisect_left(_OVERHEAD, overhead)] += 1
        cells[0] += overhead
        self._attempts[0] += outcome.attempts
        usage = facts.usage
        if usage is not None:
            tokens = usage.prompt_tokens
            cells = self._input
            cells[bisect_left(_TOKENS, tokens)] += 1
            cells[0] += tokens
            self._input_tokens[0] += tokens
            tokens = usage.completion_tokens
            cells = self._output
            cells[bisect_left(_TOKENS, tokens)] += 1
            cells[0] += tokens
            self._output_tokens[0] += tokens
            if usage.cached_tokens:
                self._cache_read[0] += usage.cached_tokens
            if usage.cache_write_tokens:
                self._cache_write[0] += usage.cache_write_tokens
            if usage.reasoning_tokens:
                self._reasoning[0] += usage.reasoning_tokens
        cost = facts.cost
        if cost is not None:
            self._cost[0] += cost
        elif usage is not None:
            self._unpriced[0] += 1
        if facts.stream:
            first_chunk, per_chunk = chunk_times(facts, outcome)
            if first_chunk is not None:
                observe(self._first_chunk, _DURATION, first_chunk)
            if per_chunk is not None:
                observe(self._per_chunk, _DURATION, per_chunk)


class InFlight:
    """The in-flight gauge's cell, for the ASGI app (`inc` as a request starts, `dec` as it ends)."""

    __slots__ = ("_cells",)

    def __init__(self, cells: Cells) -> None:
        self._cells = cells

    def inc(self) -> None:
        self._cells[0] += 1

    def dec(self) -> None:
        self._cells[0] -= 1


class CellRecorder(Collector):
    """The request metrics of one process, registered in its registry as one collector."""

    def __init__(self, families: dict[str, Family]) -> None:
        lock = threading.Lock()
        self.series = {name: Series(family, lock) for name, family in families.items()}
        self.tally = InFlight(self.series["in_flight"].cells(()))

    def collect(self) -> Iterator[Metric]:
        for series in self.series.values():
            yield series.collect()

    def route(self, route: str, status: str, extras: tuple[str, ...]) -> RouteCells:
        return RouteCells(self.series, route, status, extras)

    def answer(self, labels: AnswerLabels) -> AnswerCells:
        return AnswerCells(self.series, labels)

    def inc(self, family: str, labels: tuple[str, ...], amount: int | Decimal) -> None:
        self.series[family].cells(labels)[0] += amount
