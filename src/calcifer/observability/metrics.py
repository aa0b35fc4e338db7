"""Prometheus metrics: the OpenTelemetry GenAI client metrics (their names, attributes and bucket
boundaries, as Prometheus spells them) and Calcifer's own.

Every request is recorded once, when it has ended, from its facts (a finisher, off the response path).
Label children are bound the first time a label combination is seen and kept in a dict keyed by a small
tuple, so a request costs dict lookups and value updates, never a `labels()` call. No key, user, team
or customer label is set unless the config file's `metrics.labels` asks for it. Model names come from
clients (any dated name a family matches is routable), so the first `MODEL_NAMES_KEPT` distinct names
label their own series and later ones share `OTHER_MODEL`: a client inventing names cannot grow them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamOutcome, Usage
from calcifer.observability.children import HistogramChild, Inc, Tally, counter

# The GenAI semantic conventions' bucket boundaries (gen-ai-metrics.md, v1.41.0).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# The stable HTTP server duration buckets; and finer ones for the gateway's own time.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
EXTRA_LABELS = ("key", "user", "team", "customer")  # what `metrics.labels` may add (ids, never a secret)

# Calcifer's provider names that differ from the conventions' well-known `gen_ai.provider.name` values.
_PROVIDER_NAMES = {
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}
_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model")
_OPERATIONS = {"/v1/completions": "text_completion"}  # every other model route is a chat
MODEL_NAMES_KEPT = 500  # distinct model names with series of their own (each costs ~30 KB of children)
OTHER_MODEL = "_other"


class Facts(Protocol):
    """What a finished request tells the metrics (`http.middleware.RequestFacts` is one)."""

    request_id: str
    method: str
    route: str
    started: float  # time.perf_counter() when the request arrived
    status: int
    latency_ms: float
    model: str | None
    provider: str
    usage: Usage | None
    cost: Decimal | None
    key_id: str | None
    user: str | None
    team: str | None
    customer: str | None
    cache_hit: bool
    cost_saved: Decimal | None
    stream: bool
    error: GatewayError | None
    outcome: StreamOutcome | None


def provider_system(name: str) -> str:
    """The `gen_ai.provider.name` of one of Calcifer's providers."""
    return _PROVIDER_NAMES.get(name, name)


def refusal(error: GatewayError) -> tuple[str, str] | None:
    """(reason, level) when `error` is a budget or rate-limit refusal; the level is the one the error
    names (a key's, unless it says otherwise)."""
    reason = {"budget_exceeded": "budget", "rate_limit_error": "rate_limit"}.get(error.kind)
    if reason is None or getattr(error, "status", None) is not None:  # an upstream's 429 is no refusal
        return None
    return reason, str(getattr(error, "level", "key"))


class GatewayMetrics:
    """The gateway's metrics in one registry (in multiprocess mode each update also goes to this
    process's files, which the scrape merges)."""

    def __init__(
        self,
        labels: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
        model_names: int = MODEL_NAMES_KEPT,
    ) -> None:
        unknown = [name for name in labels if name not in EXTRA_LABELS]
        if unknown:
            raise ValueError(f"metrics.labels: unknown label {unknown[0]!r}; choose from {EXTRA_LABELS}")
        self.extra = tuple(labels)
        self.registry = registry = registry or CollectorRegistry(auto_describe=False)
        extra = self.extra
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (the whole request, every attempt and the whole stream).",
            (*_GENAI, "error_type"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per request (billable), by gen_ai_token_type input or output.",
            (*_GENAI, "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from the request's arrival to the first chunk of a streamed answer.",
            _GENAI,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.time_per_output_chunk = Histogram(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time between the chunks of a streamed answer after the first (one sample per stream).",
            _GENAI,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "calcifer_requests",
            "Requests by route and status.",
            ("route", "status", *extra),
            registry=registry,
        )
        self.request_duration = Histogram(
            "calcifer_request_duration_seconds",
            "Time from a request's arrival to its last byte, by route.",
            ("route",),
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "calcifer_gateway_overhead_seconds",
            "Time a model request spent in the gateway, not waiting on an upstream.",
            ("route",),
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.cost = Counter(
            "calcifer_cost_usd",
            "What requests cost, in USD, by provider and the model that answered (unpriced: not counted).",
            ("provider", "model", *extra),
            registry=registry,
        )
        self.unpriced = Counter(
            "calcifer_unpriced_requests",
            "Answered requests whose cost is unknown (no price for the model).",
            ("provider", "model"),
            registry=registry,
        )
        self.tokens = Counter(
            "calcifer_tokens",
            "Tokens by type: input (all prompt tokens), output (all completion tokens), and of those "
            "cache_read, cache_write and reasoning.",
            ("provider", "model", "type", *extra),
            registry=registry,
        )
        self.attempts = Counter(
            "calcifer_upstream_attempts",
            "Upstream calls made, by the provider of the request's last attempt.",
            ("provider",),
            registry=registry,
        )
        self.reattempts = Counter(
            "calcifer_reattempts",
            "Attempts after a request's first: kind failover (another deployment or a fallback model) or "
            "retry (the same deployment again).",
            ("kind",),
            registry=registry,
        )
        self.cache_hits = Counter(
            "calcifer_cache_hits", "Requests answered from the response cache.", ("model",), registry=registry
        )
        self.cost_saved = Counter(
            "calcifer_cache_saved_usd",
            "What the answers served from the cache cost when they were made, in USD.",
            ("model",),
            registry=registry,
        )
        self.refusals = Counter(
            "calcifer_refusals",
            "Requests refused by a budget or a rate limit, by reason and level.",
            ("reason", "level"),
            registry=registry,
        )
        self.in_flight = Gauge(
            "calcifer_requests_in_flight",
            "Requests being answered.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._routes: dict[tuple[object, ...], _Route] = {}
        self._models: dict[tuple[object, ...], _Model] = {}
        self._others: dict[tuple[Counter, tuple[str, ...]], Inc] = {}
        self.tally = Tally(self.in_flight)  # the in-flight gauge's inc and dec, for the ASGI app
        self._names: set[str] = set()
        self._names_kept = model_names

    def _name(self, model: str) -> str:
        """`model` as a label value: itself while fewer than the kept number of names are in use."""
        if model in self._names:
            return model
        if len(self._names) < self._names_kept:
            self._names.add(model)
            return model
        return OTHER_MODEL

    def finish(self, facts: Facts) -> None:
        """Record one request that has ended."""
        route = facts.route
        extras = self._extras(facts) if self.extra else ()
        key = (route, facts.status, *extras)
        bound = self._routes.get(key)
        if bound is None:
            bound = self._routes[key] = _Route(
                counter(self.requests.labels(route, str(facts.status), *extras)),
                HistogramChild(self.request_duration.labels(route)),
                HistogramChild(self.overhead.labels(route)),
            )
        seconds = facts.latency_ms / 1000
        bound.requests(1)
        bound.duration.observe(seconds)
        outcome = facts.outcome
        if outcome is None:
            return
        upstream = outcome.upstream_seconds
        bound.overhead.observe(seconds - upstream if seconds > upstream else 0.0)
        error = facts.error
        if error is not None:
            refused = refusal(error)
            if refused is not None:
                self._child(self.refusals, refused)(1)
        if facts.cache_hit:
            model = self._name(facts.model or "")
            self._child(self.cache_hits, (model,))(1)
            if facts.cost_saved is not None:
                self._child(self.cost_saved, (model,))(float(facts.cost_saved))
        elif outcome.attempts:
            self._answered(facts, outcome, seconds, extras)

    def _child(self, metric: Counter, labels: tuple[str, ...]) -> Inc:
        """The bound child of a counter updated on rarer paths (refusals, cache hits, reattempts)."""
        key = (metric, labels)
        found = self._others.get(key)
        if found is None:
            found = self._others[key] = counter(metric.labels(*labels))
        return found

    def _extras(self, facts: Facts) -> tuple[str, ...]:
        values = {"key": facts.key_id, "user": facts.user, "team": facts.team, "customer": facts.customer}
        return tuple(values[name] or "" for name in self.extra)

    def _answered(
        self, facts: Facts, outcome: StreamOutcome, seconds: float, extras: tuple[str, ...]
    ) -> None:
        error = facts.error
        error_type = "" if error is None else type(error).__name__
        if not error_type and facts.status >= 400:
            error_type = "client_closed" if facts.status == 499 else "_OTHER"
        provider = facts.provider or outcome.provider
        key = (facts.route, provider, facts.model, outcome.model, error_type, *extras)
        bound = self._models.get(key)
        if bound is None:
            operation = _OPERATIONS.get(facts.route, "chat")
            requested, answering = self._name(facts.model or ""), self._name(outcome.model)
            bound = self._bind(
                (operation, provider_system(provider), requested, answering),
                provider,
                answering,
                error_type,
                extras,
            )
            if OTHER_MODEL not in (requested, answering):  # only kept names: the dict stays bounded
                self._models[key] = bound
        bound.duration.observe(seconds)
        bound.attempts(outcome.attempts)
        if outcome.failovers:
            self._child(self.reattempts, ("failover",))(outcome.failovers)
        if outcome.retries:
            self._child(self.reattempts, ("retry",))(outcome.retries)
        if facts.stream and outcome.first_chunk_at and outcome.chunks:
            bound.first_chunk.observe(max(outcome.first_chunk_at - facts.started, 0.0))
            if outcome.chunks > 1 and outcome.last_chunk_at > outcome.first_chunk_at:
                between = (outcome.last_chunk_at - outcome.first_chunk_at) / (outcome.chunks - 1)
                bound.per_chunk.observe(between)
        usage = facts.usage
        if usage is not None:
            bound.input_usage.observe(usage.prompt_tokens)
            bound.output_usage.observe(usage.completion_tokens)
            tokens = bound.tokens
            if usage.prompt_tokens:
                tokens[0](usage.prompt_tokens)
            if usage.completion_tokens:
                tokens[1](usage.completion_tokens)
            if usage.cached_tokens:
                tokens[2](usage.cached_tokens)
            if usage.cache_write_tokens:
                tokens[3](usage.cache_write_tokens)
            if usage.reasoning_tokens:
                tokens[4](usage.reasoning_tokens)
        cost = facts.cost
        if cost is not None:
            if cost:
                bound.cost(float(cost))
        elif usage is not None:
            bound.unpriced(1)

    def _bind(
        self,
        genai: tuple[str, str, str, str],
        provider: str,
        model: str,
        error_type: str,
        extras: tuple[str, ...],
    ) -> _Model:
        return _Model(
            HistogramChild(self.operation_duration.labels(*genai, error_type)),
            HistogramChild(self.token_usage.labels(*genai, "input")),
            HistogramChild(self.token_usage.labels(*genai, "output")),
            HistogramChild(self.time_to_first_chunk.labels(*genai)),
            HistogramChild(self.time_per_output_chunk.labels(*genai)),
            counter(self.cost.labels(provider, model, *extras)),
            counter(self.unpriced.labels(provider, model)),
            counter(self.attempts.labels(provider)),
            tuple(counter(self.tokens.labels(provider, model, kind, *extras)) for kind in TOKEN_TYPES),
        )


TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")


@dataclass(frozen=True, slots=True)
class _Route:
    requests: Inc
    duration: HistogramChild
    overhead: HistogramChild


@dataclass(frozen=True, slots=True)
class _Model:
    duration: HistogramChild
    input_usage: HistogramChild
    output_usage: HistogramChild
    first_chunk: HistogramChild
    per_chunk: HistogramChild
    cost: Inc
    unpriced: Inc
    attempts: Inc
    tokens: tuple[Inc, ...]
