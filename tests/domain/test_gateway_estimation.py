"""GatewayService estimates the usage a provider does not report, and prices it, marked as estimated.

The counter is the domain's own `CharCounter` (4 characters a token, OpenAI's message framing), so
every expected count below is worked out by hand.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.tokens import CharCounter
from calcifer.domain.types import ChatRequest, StreamChunk, StreamOutcome, Usage
from tests.domain.doubles import FakeClock, ScriptedProvider, StreamScript, chunk, response

PRICE = PricingConfig.per_million("2.50", "10.00")
BODY = {"model": "model-a", "messages": [{"role": "user", "content": "abcdefgh"}]}
# 3 reply priming + 3 message framing + "user" (1) + "abcdefgh" (2)
PROMPT = 9
M = Decimal(1_000_000)


def gateway(provider: ScriptedProvider, *, estimate: bool = True) -> GatewayService:
    pricing = PricingRegistry()
    pricing.register("model-a", PRICE)
    return GatewayService(
        ProviderRegistry([provider]),
        CostCalculator(pricing),
        FakeClock(),
        counter=CharCounter() if estimate else None,
    )


def cost(prompt: int, completion: int) -> Decimal:
    return (prompt * Decimal("2.50") + completion * Decimal(10)) / M


def tool_delta(arguments: str) -> StreamChunk:
    call = {"index": 0, "function": {"arguments": arguments}}
    return StreamChunk({"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]})


async def test_a_response_without_usage_is_estimated_and_priced() -> None:
    service = gateway(ScriptedProvider(steps=[response("hi there!")]))
    _, priced = await service.complete(ChatRequest("model-a", BODY))
    assert priced.usage == Usage(PROMPT, 3, estimated=True)  # "hi there!" is 9 characters
    assert priced.cost == cost(PROMPT, 3)
    assert priced.provider == "scripted"


async def test_reported_usage_is_never_replaced() -> None:
    usage = Usage(1000, 10)
    service = gateway(ScriptedProvider(steps=[response("hi there!", usage)]))
    _, priced = await service.complete(ChatRequest("model-a", BODY))
    assert priced.usage == usage and not priced.usage.estimated
    assert priced.cost == cost(1000, 10)


async def test_without_a_counter_nothing_is_estimated() -> None:
    service = gateway(ScriptedProvider(steps=[response("hi")]), estimate=False)
    _, priced = await service.complete(ChatRequest("model-a", BODY))
    assert priced.usage is None and priced.cost is None


async def relay(service: GatewayService, outcome: StreamOutcome) -> list[StreamChunk]:
    request = ChatRequest("model-a", BODY, stream=True)
    return [c async for c in service.stream(request, outcome)]


async def test_a_stream_that_ends_without_a_usage_chunk_is_estimated_from_what_was_sent() -> None:
    script: StreamScript = [chunk("Hello"), chunk(", wor"), chunk("ld!")]  # 13 characters
    outcome = StreamOutcome()
    chunks = await relay(gateway(ScriptedProvider(streams=[script])), outcome)
    assert len(chunks) == 3
    assert outcome.usage == Usage(PROMPT, 4, estimated=True)
    assert outcome.cost == cost(PROMPT, 4)


async def test_a_stream_with_a_usage_chunk_keeps_the_reported_usage() -> None:
    reported = Usage(20, 2)
    outcome = StreamOutcome()
    await relay(gateway(ScriptedProvider(streams=[[chunk("Hello"), chunk(usage=reported)]])), outcome)
    assert outcome.usage == reported and outcome.cost == cost(20, 2)


async def test_tool_call_argument_fragments_count_as_output() -> None:
    script: StreamScript = [tool_delta('{"city":'), tool_delta('"Paris"}')]  # 16 characters
    outcome = StreamOutcome()
    await relay(gateway(ScriptedProvider(streams=[script])), outcome)
    assert outcome.usage == Usage(PROMPT, 4, estimated=True)


async def test_a_stream_cut_by_the_provider_is_estimated_from_the_delivered_part() -> None:
    script: StreamScript = [chunk("abcdefgh"), UpstreamUnavailable("gone")]
    outcome = StreamOutcome()
    with pytest.raises(UpstreamUnavailable):
        await relay(gateway(ScriptedProvider(streams=[script])), outcome)
    assert outcome.usage == Usage(PROMPT, 2, estimated=True)
    assert outcome.cost == cost(PROMPT, 2)


async def test_a_client_going_away_still_leaves_an_estimate() -> None:
    provider = ScriptedProvider(streams=[[chunk("abcd"), chunk("efgh"), chunk("never sent")]])
    outcome = StreamOutcome()
    stream = gateway(provider).stream(ChatRequest("model-a", BODY, stream=True), outcome)
    await anext(stream)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert provider.closed == 1
    assert outcome.usage == Usage(PROMPT, 2, estimated=True)  # "abcdefgh": what the client received


async def test_an_empty_stream_is_estimated_from_its_prompt() -> None:
    outcome = StreamOutcome()
    assert await relay(gateway(ScriptedProvider(streams=[[]])), outcome) == []
    assert outcome.usage == Usage(PROMPT, 0, estimated=True)


async def test_a_stream_without_a_counter_stays_unpriced() -> None:
    outcome = StreamOutcome()
    await relay(gateway(ScriptedProvider(streams=[[chunk("Hello")]]), estimate=False), outcome)
    assert outcome.usage is None and outcome.cost is None


async def test_a_long_stream_without_usage_is_estimated_from_all_of_its_text() -> None:
    # More chunks than the gateway holds before collecting their text: none may be lost or counted twice.
    script: StreamScript = [chunk("abcd") for _ in range(150)]  # 600 characters
    outcome = StreamOutcome()
    chunks = await relay(gateway(ScriptedProvider(streams=[script])), outcome)
    assert len(chunks) == 150
    assert outcome.usage == Usage(PROMPT, 150, estimated=True)


async def test_usage_reported_after_many_chunks_wins_over_any_estimate() -> None:
    reported = Usage(30, 200)
    script: StreamScript = [chunk("abcd") for _ in range(100)] + [chunk(usage=reported)]
    outcome = StreamOutcome()
    await relay(gateway(ScriptedProvider(streams=[script])), outcome)
    assert outcome.usage == reported and outcome.cost == cost(30, 200)
