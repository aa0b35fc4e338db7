"""Request metrics in multiprocess mode (`--workers N`): prometheus_client's own metrics, whose every
update goes to this worker's mmap file at once, so that any worker's scrape merges every worker's
requests (`exposition.render`). Label children are bound once per label combination and updated through
prometheus_client's documented `inc` and `observe`."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from calcifer.domain.types import StreamOutcome
from calcifer.observability.families import TOKEN_TYPES, AnswerLabels, Facts, Family, chunk_times


class RouteChildren:
    """A request's count by route and status, its duration and overhead by route."""

    __slots__ = ("_duration", "_overhead", "_requests")

    def __init__(
        self,
        counters: dict[str, Counter],
        histograms: dict[str, Histogram],
        route: str,
        status: str,
        extras: tuple[str, ...],
    ) -> None:
        self._requests = counters["requests"].labels(route, status, *extras)
        self._duration = histograms["request_duration"].labels(route)
        self._overhead = histograms["overhead"].labels(route)

    def record(self, seconds: float, overhead: float | None) -> None:
        self._requests.inc()
        self._duration.observe(seconds)
        if overhead is not None:
            self._overhead.observe(overhead)


class AnswerChildren:
    """A request a model answered, for one combination of its labels."""

    __slots__ = (
        "_attempts",
        "_cost",
        "_duration",
        "_first_chunk",
        "_input",
        "_output",
        "_per_chunk",
        "_route",
        "_tokens",
        "_unpriced",
    )

    def __init__(
        self, counters: dict[str, Counter], histograms: dict[str, Histogram], labels: AnswerLabels
    ) -> None:
        genai, provider, model, extras = labels.genai, labels.provider, labels.model, labels.extras
        self._route = RouteChildren(counters, histograms, labels.route, labels.status, extras)
        self._duration = histograms["operation_duration"].labels(*genai, labels.error_type)
        self._input = histograms["token_usage"].labels(*genai, "input")
        self._output = histograms["token_usage"].labels(*genai, "output")
        self._first_chunk = histograms["time_to_first_chunk"].labels(*genai)
        self._per_chunk = histograms["time_per_output_chunk"].labels(*genai)
        self._cost = counters["cost"].labels(provider, model, *extras)
        self._unpriced = counters["unpriced"].labels(provider, model)
        self._attempts = counters["attempts"].labels(provider)
        self._tokens = [counters["tokens"].labels(provider, model, kind, *extras) for kind in TOKEN_TYPES]

    def record(self, facts: Facts, outcome: StreamOutcome) -> None:
        seconds = facts.latency_ms / 1000
        upstream = outcome.upstream_seconds
        self._route.record(seconds, seconds - upstream if seconds > upstream else 0.0)
        self._duration.observe(seconds)
        self._attempts.inc(outcome.attempts)
        first_chunk, per_chunk = chunk_times(facts, outcome)
        if first_chunk is not None:
            self._first_chunk.observe(first_chunk)
        if per_chunk is not None:
            self._per_chunk.observe(per_chunk)
        usage = facts.usage
        if usage is not None:
            self._input.observe(usage.prompt_tokens)
            self._output.observe(usage.completion_tokens)
            counts = (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.cache_write_tokens,
                usage.reasoning_tokens,
            )
            for child, count in zip(self._tokens, counts, strict=True):
                if count:
                    child.inc(count)
        cost = facts.cost
        if cost is not None:
            if cost:
                self._cost.inc(float(cost))
        elif usage is not None:
            self._unpriced.inc()


class ChildRecorder:
    """The request metrics as prometheus_client metrics in `registry`."""

    def __init__(self, families: dict[str, Family], registry: CollectorRegistry) -> None:
        of = families.items()
        self.counters = {
            name: Counter(family.name, family.help, family.labels, registry=registry)
            for name, family in of
            if family.kind == "counter"
        }
        self.histograms = {
            name: Histogram(
                family.name, family.help, family.labels, buckets=family.buckets, registry=registry
            )
            for name, family in of
            if family.kind == "histogram"
        }
        in_flight = families["in_flight"]
        self.tally = Gauge(in_flight.name, in_flight.help, registry=registry, multiprocess_mode="livesum")
        self._children: dict[tuple[str, tuple[str, ...]], Counter] = {}

    def route(self, route: str, status: str, extras: tuple[str, ...]) -> RouteChildren:
        return RouteChildren(self.counters, self.histograms, route, status, extras)

    def answer(self, labels: AnswerLabels) -> AnswerChildren:
        return AnswerChildren(self.counters, self.histograms, labels)

    def inc(self, family: str, labels: tuple[str, ...], amount: int | Decimal) -> None:
        key = (family, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.counters[family].labels(*labels)
        child.inc(float(amount))
