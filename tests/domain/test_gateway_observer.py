"""The gateway tells an `AttemptObserver` of each attempt: as it starts, when it fails, and once its
answer is whole (a stream's when it has ended, its usage and cost known)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, StreamOutcome, Usage
from tests.domain.doubles import FakeClock, ScriptedProvider, StreamScript, chunk, response

USAGE = Usage(1_000_000, 1_000_000)


class Recorder:
    """An observer that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def attempt(
        self,
        outcome: StreamOutcome,
        provider: str,
        model: str,
        deployment: str,
        number: int,
        request: ChatRequest,
    ) -> None:
        self.events.append(("attempt", provider, model, deployment, number, request.stream))

    def failed(self, outcome: StreamOutcome, error: BaseException) -> None:
        self.events.append(("failed", type(error).__name__))

    def answered(
        self, outcome: StreamOutcome, body: Mapping[str, object] | None, error: BaseException | None = None
    ) -> None:
        self.events.append(
            ("answered", body is not None, outcome.cost, type(error).__name__ if error else None)
        )


def _gateway(provider: ScriptedProvider, observer: Recorder) -> GatewayService:
    pricing = PricingRegistry()
    pricing.register("model-a", PricingConfig.per_million("2.50", "10.00"))
    return GatewayService(
        ProviderRegistry([provider]),
        CostCalculator(pricing),
        FakeClock(),
        default_policy=RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0),
        rand=lambda: 0.5,
        observer=observer,
    )


def _request(stream: bool = False) -> ChatRequest:
    return ChatRequest("model-a", {"model": "model-a", "messages": []}, stream=stream)


async def test_a_retried_answer_is_two_attempts_the_first_failed() -> None:
    provider = ScriptedProvider("p", ["model-a"], steps=[UpstreamUnavailable("503"), response("hi", USAGE)])
    observer = Recorder()
    outcome = StreamOutcome()
    await _gateway(provider, observer).complete(_request(), outcome=outcome)
    assert observer.events == [
        ("attempt", "p", "model-a", "p/model-a", 1, False),
        ("failed", "UpstreamUnavailable"),
        ("attempt", "p", "model-a", "p/model-a", 2, False),
        ("answered", True, Decimal("12.50"), None),
    ]
    assert (outcome.retries, outcome.failovers) == (1, 0)


async def test_a_stream_is_answered_when_it_ends_and_an_empty_one_at_once() -> None:
    streams: list[StreamScript] = [[UpstreamUnavailable("503")], [chunk("ok"), chunk(usage=USAGE)], []]
    provider = ScriptedProvider("p", ["model-a"], streams=streams)
    observer = Recorder()
    gateway = _gateway(provider, observer)
    chunks = [c async for c in gateway.stream(_request(stream=True), StreamOutcome())]
    assert len(chunks) == 2
    assert observer.events[1] == ("failed", "UpstreamUnavailable")
    assert observer.events[-1] == ("answered", True, Decimal("12.50"), None)
    observer.events.clear()
    assert [c async for c in gateway.stream(_request(stream=True), StreamOutcome())] == []
    assert observer.events == [
        ("attempt", "p", "model-a", "p/model-a", 1, True),
        ("answered", False, None, None),
    ]


async def test_a_stream_that_breaks_after_its_first_chunk_is_answered_with_the_error() -> None:
    broken: StreamScript = [chunk("ok"), UpstreamUnavailable("reset")]
    provider = ScriptedProvider("p", ["model-a"], streams=[broken])
    observer = Recorder()
    with pytest.raises(UpstreamUnavailable):
        _ = [c async for c in _gateway(provider, observer).stream(_request(stream=True), StreamOutcome())]
    assert observer.events[-1] == ("answered", True, None, "UpstreamUnavailable")
