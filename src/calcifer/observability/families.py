"""The metrics recorded per request: their names, help, labels and bucket boundaries, in one table that
both recorders build from (`cells` in one process, `children` in multiprocess mode), and the facts of a
request they are recorded from."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamOutcome, Usage

# The GenAI semantic conventions' bucket boundaries (gen-ai-metrics.md, v1.41.0).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# The stable HTTP server duration buckets; and finer ones for the gateway's own time.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model")

Kind = Literal["counter", "histogram", "gauge"]


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


@dataclass(frozen=True, slots=True)
class AnswerLabels:
    """The label values of an answered request's series."""

    route: str
    status: str
    genai: tuple[str, str, str, str]  # operation, provider system, requested model, answering model
    error_type: str
    provider: str
    model: str  # the answering model
    extras: tuple[str, ...]


def chunk_times(facts: Facts, outcome: StreamOutcome) -> tuple[float | None, float | None]:
    """A stream's time to its first chunk and mean time between the later ones (None: not known)."""
    if not (facts.stream and outcome.first_chunk_at and outcome.chunks):
        return None, None
    first = max(outcome.first_chunk_at - facts.started, 0.0)
    if outcome.chunks > 1 and outcome.last_chunk_at > outcome.first_chunk_at:
        return first, (outcome.last_chunk_at - outcome.first_chunk_at) / (outcome.chunks - 1)
    return first, None


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: a counter's name without `_total`, as prometheus_client takes it."""

    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


def families(extra: tuple[str, ...]) -> dict[str, Family]:
    """The request metrics by their attribute name; `extra` are the labels `metrics.labels` adds."""
    return {
        "operation_duration": Family(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (the whole request, every attempt and the whole stream).",
            "histogram",
            (*GENAI, "error_type"),
            DURATION_BUCKETS,
        ),
        "token_usage": Family(
            "gen_ai_client_token_usage",
            "Tokens used per request (billable), by gen_ai_token_type input or output.",
            "histogram",
            (*GENAI, "gen_ai_token_type"),
            TOKEN_BUCKETS,
        ),
        "time_to_first_chunk": Family(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from the request's arrival to the first chunk of a streamed answer.",
            "histogram",
            GENAI,
            DURATION_BUCKETS,
        ),
        "time_per_output_chunk": Family(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time between the chunks of a streamed answer after the first (one sample per stream).",
            "histogram",
            GENAI,
            DURATION_BUCKETS,
        ),
        "requests": Family(
            "calcifer_requests", "Requests by route and status.", "counter", ("route", "status", *extra)
        ),
        "request_duration": Family(
            "calcifer_request_duration_seconds",
            "Time from a request's arrival to its last byte, by route.",
            "histogram",
            ("route",),
            HTTP_BUCKETS,
        ),
        "overhead": Family(
            "calcifer_gateway_overhead_seconds",
            "Time a model request spent in the gateway, not waiting on an upstream.",
            "histogram",
            ("route",),
            OVERHEAD_BUCKETS,
        ),
        "cost": Family(
            "calcifer_cost_usd",
            "What requests cost, in USD, by provider and the model that answered (unpriced: not counted).",
            "counter",
            ("provider", "model", *extra),
        ),
        "unpriced": Family(
            "calcifer_unpriced_requests",
            "Answered requests whose cost is unknown (no price for the model).",
            "counter",
            ("provider", "model"),
        ),
        "tokens": Family(
            "calcifer_tokens",
            "Tokens by type: input (all prompt tokens), output (all completion tokens), and of those "
            "cache_read, cache_write and reasoning.",
            "counter",
            ("provider", "model", "type", *extra),
        ),
        "attempts": Family(
            "calcifer_upstream_attempts",
            "Upstream calls made, by the provider of the request's last attempt.",
            "counter",
            ("provider",),
        ),
        "reattempts": Family(
            "calcifer_reattempts",
            "Attempts after a request's first: kind failover (another deployment or a fallback model) or "
            "retry (the same deployment again).",
            "counter",
            ("kind",),
        ),
        "cache_hits": Family(
            "calcifer_cache_hits", "Requests answered from the response cache.", "counter", ("model",)
        ),
        "cost_saved": Family(
            "calcifer_cache_saved_usd",
            "What the answers served from the cache cost when they were made, in USD.",
            "counter",
            ("model",),
        ),
        "refusals": Family(
            "calcifer_refusals",
            "Requests refused by a budget or a rate limit, by reason and level.",
            "counter",
            ("reason", "level"),
        ),
        "in_flight": Family("calcifer_requests_in_flight", "Requests being answered.", "gauge"),
    }
