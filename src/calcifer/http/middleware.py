"""What is known about one request, filled in while it runs and reported once when it has ended."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamOutcome, Usage

FACTS_KEY = "calcifer.facts"


@dataclass(slots=True)
class RequestFacts:
    """What is known about one request; handlers fill it in, the middleware reports it once at the end."""

    request_id: str
    method: str
    path: str
    started: float
    status: int = 499
    model: str | None = None
    provider: str = ""
    stream: bool = False
    usage: Usage | None = None
    cost: Decimal | None = None
    cut_short: bool = False
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    customer: str | None = None
    tags: tuple[str, ...] = ()
    refusal: str | None = None  # "budget", "rate_limit" or "auth" when a policy refused the request
    cache_hit: bool = False
    cost_saved: Decimal | None = None  # a cache hit: the cost of the cached answer when it was made
    latency_ms: float = 0.0
    head_sent: float = 0.0  # `time.perf_counter()` when the response head went out (a stream's first event)
    route: str = "other"  # the matched route's path template (a bounded label), "other" when none matched
    error: GatewayError | None = None  # what the client was told went wrong, if anything
    outcome: StreamOutcome | None = None  # a model call's attempts and timings (None: no model was called)

    def log_line(self) -> dict[str, object]:
        line: dict[str, object] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "latency_ms": self.latency_ms,
        }
        if self.model is not None:
            line["model"] = self.model
            line["provider"] = self.provider
            line["stream"] = self.stream
            line["prompt_tokens"] = self.usage.prompt_tokens if self.usage else 0
            line["completion_tokens"] = self.usage.completion_tokens if self.usage else 0
            line["cost"] = None if self.cost is None else format(self.cost, "f")
            if self.usage is not None and self.usage.estimated:
                line["estimated"] = True
            if self.cut_short:
                line["cut_short"] = True
            if self.key_id is not None:
                line["key_id"] = self.key_id
        return line


Finisher = Callable[[RequestFacts], None]
