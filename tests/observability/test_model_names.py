"""Model names come from clients: only the first few distinct ones get series of their own, later ones
share `_other`, so a client that invents names cannot grow the metrics (or the gateway's memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamOutcome, Usage
from calcifer.observability.metrics import OTHER_MODEL, GatewayMetrics
from tests.observability.scrape import Scrape


@dataclass
class _Facts:
    model: str | None
    cache_hit: bool = False
    request_id: str = "req"
    method: str = "POST"
    route: str = "/v1/chat/completions"
    started: float = 0.0
    status: int = 200
    latency_ms: float = 12.0
    provider: str = "openai"
    usage: Usage | None = field(default_factory=lambda: Usage(prompt_tokens=3, completion_tokens=5))
    cost: Decimal | None = Decimal("0.0001")
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    customer: str | None = None
    cost_saved: Decimal | None = None
    stream: bool = False
    error: GatewayError | None = None
    outcome: StreamOutcome | None = None

    def __post_init__(self) -> None:
        self.outcome = StreamOutcome(provider=self.provider, model=self.model or "", attempts=1)


def _scrape(metrics: GatewayMetrics) -> Scrape:
    return Scrape(generate_latest(metrics.registry).decode())


def test_names_past_the_kept_number_share_one_series() -> None:
    metrics = GatewayMetrics(registry=CollectorRegistry(), model_names=2)
    names = ["gpt-4o", "claude-sonnet-4-5", "claude-sonnet-4-20250101", "claude-sonnet-4-20250102", "x"]
    for name in [*names, "gpt-4o"]:
        metrics.finish(_Facts(model=name))
    metrics.finish(_Facts(model="another-new-name", cache_hit=True))

    seen = _scrape(metrics)
    requested = {
        labels["gen_ai_request_model"]
        for labels in seen.labels("gen_ai_client_operation_duration_seconds_count")
    }
    assert requested == {"gpt-4o", "claude-sonnet-4-5", OTHER_MODEL}
    count = "gen_ai_client_operation_duration_seconds_count"
    assert seen.value(count, gen_ai_request_model="gpt-4o") == 2
    assert seen.value(count, gen_ai_request_model=OTHER_MODEL) == 3
    assert {labels["model"] for labels in seen.labels("calcifer_cost_usd_total")} == requested
    assert seen.value("calcifer_cost_usd_total") == pytest.approx(6 * 0.0001)
    assert seen.value("calcifer_cache_hits_total", model=OTHER_MODEL) == 1


def test_thousands_of_invented_names_bind_a_bounded_number_of_children() -> None:
    metrics = GatewayMetrics(registry=CollectorRegistry(), model_names=10)
    for n in range(3000):
        metrics.finish(_Facts(model=f"claude-sonnet-4-2025{n:04d}"))
    seen = _scrape(metrics)
    assert len(seen.labels("gen_ai_client_operation_duration_seconds_count")) == 11
    assert len(metrics._answers) == 10  # bound children are kept for the kept names only
    assert seen.value("gen_ai_client_operation_duration_seconds_count") == 3000
