"""GatewayService over deployments and fallbacks: failover, cooldowns, the deadline, streams and in-flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

import pytest

from calcifer.domain.attempts import DeadlineExceeded, NoDeployment, RoutingConfig, context_overflow
from calcifer.domain.cooldowns import CooldownPolicy
from calcifer.domain.cost import CostCalculator
from calcifer.domain.deployments import DeploymentSpec, Route, RouteSpec, build_routes
from calcifer.domain.errors import (
    ProviderError,
    ProviderNotConfigured,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import Provider
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import (
    MAX_DEPLOYMENTS,
    ChatRequest,
    ChatResponse,
    NativeCall,
    StreamChunk,
    StreamOutcome,
    Usage,
)
from calcifer.limits.cooldowns import MemoryCooldownStore
from tests.domain.doubles import CredentialedProvider, FakeClock, ScriptedProvider, chunk, response

USAGE = Usage(1000, 1000)
PRICE = PricingConfig.per_million("2.50", "10.00")
COST = Decimal("0.0125")  # 1000 * 2.50e-6 + 1000 * 10e-6
POLICY = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=8.0, max_retry_after=20.0)


def _rate_limited(after: float | None = None) -> UpstreamRateLimited:
    return UpstreamRateLimited("slow down", status=429, retry_after=after)


def _down() -> UpstreamUnavailable:
    return UpstreamUnavailable("upstream answered HTTP 500", status=500)


class Hanging(ScriptedProvider):
    """Never answers (until cancelled); counts the calls that were cancelled."""

    def __init__(self, name: str, models: Iterable[str]) -> None:
        super().__init__(name, models)
        self.cancelled = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


def _gateway(
    providers: Iterable[Provider],
    specs: Mapping[str, RouteSpec],
    *,
    timeout: float | None = None,
    cooldown: CooldownPolicy | None = None,
    rand: float = 0.0,
) -> tuple[GatewayService, FakeClock, MemoryCooldownStore, dict[str, Route]]:
    clock = FakeClock()
    pricing = PricingRegistry()
    for model in ("m", "m-a", "m-b", "m-c", "big"):
        pricing.register(model, PRICE)
    registry = ProviderRegistry(providers)
    routes = build_routes(registry, specs)
    store = MemoryCooldownStore(clock.now)
    config = RoutingConfig(routes, cooldown or CooldownPolicy(), timeout)
    gateway = GatewayService(
        registry,
        CostCalculator(pricing),
        clock,
        default_policy=POLICY,
        rand=lambda: rand,
        routing=config,
        cooldowns=store,
    )
    return gateway, clock, store, routes


def _pair(
    *, a: list[ChatResponse | Exception], b: list[ChatResponse | Exception]
) -> tuple[
    ScriptedProvider, ScriptedProvider, GatewayService, FakeClock, MemoryCooldownStore, dict[str, Route]
]:
    pa = ScriptedProvider("a", ("m-a",), steps=a)
    pb = ScriptedProvider("b", ("m-b",), steps=b)
    spec = RouteSpec((DeploymentSpec("a", "m-a", 3.0), DeploymentSpec("b", "m-b", 1.0)))
    gateway, clock, store, routes = _gateway([pa, pb], {"m": spec})
    return pa, pb, gateway, clock, store, routes


def _request(model: str = "m", stream: bool = False) -> ChatRequest:
    return ChatRequest(model, {"model": model, "messages": [{"role": "user", "content": "hi"}]}, stream)


async def test_a_429_with_retry_after_fails_over_at_once_and_cools_that_deployment() -> None:
    pa, pb, gateway, clock, store, _ = _pair(
        a=[_rate_limited(after=30)], b=[response("from b", USAGE), response("again b", USAGE)]
    )
    outcome = StreamOutcome()
    answer, priced = await gateway.complete(_request(), outcome=outcome)
    assert answer.body["choices"][0]["message"]["content"] == "from b"  # type: ignore[index]
    assert (priced.provider, priced.model, priced.attempts, priced.cost) == ("b", "m-b", 2, COST)
    assert (outcome.provider, outcome.model, outcome.attempts) == ("b", "m-b", 2)
    assert clock.sleeps == []  # no waiting: another deployment was there
    assert await store.cooling({"a/m-a", "b/m-b"}) == {"a/m-a": clock.now() + 30}
    # While a cools, b alone is tried (a has nothing scripted: calling it would fail the test).
    _, priced = await gateway.complete(_request())
    assert (priced.provider, priced.attempts) == ("b", 1)
    assert [r.model for r in pa.requests] == ["m-a"] and [r.model for r in pb.requests] == ["m-b", "m-b"]


async def test_a_deployment_that_keeps_failing_is_cooled_then_tried_again() -> None:
    pa, pb, gateway, clock, store, _ = _pair(
        a=[_down(), _down(), _down(), response("a is back", USAGE)],
        b=[response("b", USAGE) for _ in range(4)],
    )
    for _ in range(3):  # three failures within the window: the third starts a 30 s cooldown
        _, priced = await gateway.complete(_request())
        assert (priced.provider, priced.attempts) == ("b", 2)
    assert await store.cooling({"a/m-a"}) == {"a/m-a": clock.now() + 30}
    _, priced = await gateway.complete(_request())
    assert (priced.provider, priced.attempts) == ("b", 1)
    clock.time += 31
    _, priced = await gateway.complete(_request())
    assert (priced.provider, priced.attempts) == ("a", 1)
    assert len(pa.requests) == 4 and len(pb.requests) == 4


async def test_failures_spread_beyond_the_window_do_not_cool() -> None:
    _, _, gateway, clock, store, _ = _pair(
        a=[_down(), _down(), _down()], b=[response("b", USAGE) for _ in range(3)]
    )
    for _ in range(3):
        await gateway.complete(_request())
        clock.time += 61
    assert await store.cooling({"a/m-a"}) == {}


async def test_a_success_resets_the_failure_count() -> None:
    _, _, gateway, _, store, _ = _pair(
        a=[_down(), _down(), response("a", USAGE), _down(), _down()],
        b=[response("b", USAGE) for _ in range(4)],
    )
    for _ in range(5):
        await gateway.complete(_request())
    assert await store.cooling({"a/m-a"}) == {}


async def test_an_upstream_rejection_is_not_failed_over() -> None:
    _, pb, gateway, _, store, _ = _pair(a=[UpstreamRejected("bad tool schema", status=400)], b=[])
    with pytest.raises(UpstreamRejected, match="bad tool schema"):
        await gateway.complete(_request())
    assert pb.requests == [] and await store.cooling({"a/m-a"}) == {}


async def test_every_deployment_cooling_is_a_503_with_retry_after() -> None:
    _, _, gateway, _, store, _ = _pair(a=[], b=[])
    await store.cool("a/m-a", 12)
    await store.cool("b/m-b", 40)
    with pytest.raises(NoDeployment) as caught:
        await gateway.complete(_request())
    assert caught.value.retry_after == 12
    assert caught.value.http_status == 503


async def test_fallbacks_in_order_and_the_last_one_retried_with_its_policy() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[_down()])
    pb = ScriptedProvider("b", ("m-b",), steps=[_rate_limited()])
    pc = ScriptedProvider("c", ("m-c",), steps=[_down(), response("c", USAGE)])
    spec = RouteSpec(fallbacks=("m-b", "m-c"))
    gateway, clock, _, _ = _gateway([pa, pb, pc], {"m-a": spec})
    _, priced = await gateway.complete(_request("m-a"))
    assert (priced.provider, priced.model, priced.attempts) == ("c", "m-c", 4)
    assert clock.sleeps == [0.25]  # base 0.5 with the jitter draw 0: 0.5 * (0.5 + 0 / 2)


async def test_the_last_candidates_error_is_what_the_client_sees() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[_down()])
    pb = ScriptedProvider("b", ("m-b",), steps=[_rate_limited(after=60)])
    gateway, clock, _, _ = _gateway([pa, pb], {"m-a": RouteSpec(fallbacks=("m-b",))})
    with pytest.raises(UpstreamRateLimited) as caught:  # 60 s is past max_retry_after: not waited for
        await gateway.complete(_request("m-a"))
    assert caught.value.retry_after == 60 and clock.sleeps == []


async def test_context_overflow_goes_to_the_context_fallbacks_only() -> None:
    overflow = UpstreamRejected(
        "This model's maximum context length is 128000 tokens.", status=400, code="context_length_exceeded"
    )
    pa = ScriptedProvider("a", ("m-a",), steps=[overflow])
    pb = ScriptedProvider("b", ("m-b",))
    big = ScriptedProvider("bigger", ("big",), steps=[response("fits", USAGE)])
    spec = RouteSpec(fallbacks=("m-b",), context_fallbacks=("big",))
    gateway, _, store, _ = _gateway([pa, pb, big], {"m-a": spec})
    _, priced = await gateway.complete(_request("m-a"))
    assert (priced.provider, priced.model, priced.attempts) == ("bigger", "big", 2)
    assert pb.requests == [] and await store.cooling({"a/m-a"}) == {}


@pytest.mark.parametrize(
    ("error", "overflow"),
    [
        (UpstreamRejected("x", status=400, code="context_length_exceeded"), True),
        (UpstreamRejected("prompt is too long: 210000 tokens > 200000 maximum", status=400), True),
        (
            UpstreamRejected(
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                status=400,
            ),
            True,
        ),
        (UpstreamRejected("Invalid value for 'temperature'", status=400), False),
        (UpstreamUnavailable("context window service down", status=500), False),
    ],
)
def test_context_overflow_is_recognised_from_each_providers_words(
    error: ProviderError, overflow: bool
) -> None:
    assert context_overflow(error) is overflow


async def test_a_deployment_without_credentials_is_skipped() -> None:
    keyless = CredentialedProvider("keyless", ("m-a",), configured=False)
    pb = ScriptedProvider("b", ("m-b",), steps=[response("b", USAGE)])
    spec = RouteSpec((DeploymentSpec("keyless", "m-a"), DeploymentSpec("b", "m-b")))
    gateway, _, _, _ = _gateway([keyless, pb], {"m": spec})
    _, priced = await gateway.complete(_request())
    assert (priced.provider, priced.attempts) == ("b", 1) and keyless.requests == []


async def test_the_deadline_bounds_all_attempts_and_cancels_the_hanging_call() -> None:
    hang = Hanging("a", ("m-a",))
    pb = ScriptedProvider("b", ("m-b",))
    gateway, _, _, _ = _gateway([hang, pb], {"m-a": RouteSpec(fallbacks=("m-b",))}, timeout=0.2)
    outcome = StreamOutcome()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"request timeout of 0.2s \(1 attempts\)") as caught:
        await gateway.complete(_request("m-a"), outcome=outcome)
    assert 0.15 < time.monotonic() - started < 1.0
    assert caught.value.status == 504 and isinstance(caught.value, UpstreamTimeout)
    assert hang.cancelled == 1 and pb.requests == [] and outcome.attempts == 1


async def test_an_upstream_timeout_fails_over_within_the_deadline() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[UpstreamTimeout("a did not answer in time", status=504)])
    pb = ScriptedProvider("b", ("m-b",), steps=[response("b", USAGE)])
    gateway, _, _, _ = _gateway([pa, pb], {"m-a": RouteSpec(fallbacks=("m-b",))}, timeout=5)
    _, priced = await gateway.complete(_request("m-a"))
    assert (priced.provider, priced.attempts) == ("b", 2)


async def test_no_backoff_is_slept_past_the_deadline() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[_rate_limited(after=10)])
    gateway, clock, _, _ = _gateway([pa], {}, timeout=5)
    with pytest.raises(UpstreamRateLimited):
        await gateway.complete(_request("m-a"))
    assert clock.sleeps == []


async def test_the_deadline_passed_during_a_backoff_ends_the_request() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[_down(), _down()])
    gateway, clock, _, _ = _gateway([pa], {}, timeout=1)

    async def slow_sleep(seconds: float) -> None:  # the backoff itself overruns (a stalled loop)
        clock.sleeps.append(seconds)
        clock.time += 5

    clock.sleep = slow_sleep  # type: ignore[method-assign]
    with pytest.raises(DeadlineExceeded, match=r"1 attempts; the last error: upstream answered HTTP 500"):
        await gateway.complete(_request("m-a"))


async def _drain(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in chunks]


async def test_a_stream_fails_over_before_its_first_chunk() -> None:
    pa = ScriptedProvider("a", ("m-a",), streams=[[_down()]])
    pb = ScriptedProvider("b", ("m-b",), streams=[[chunk("he"), chunk("y"), chunk(usage=USAGE)]])
    spec = RouteSpec((DeploymentSpec("a", "m-a"), DeploymentSpec("b", "m-b")))
    gateway, _, _, routes = _gateway([pa, pb], {"m": spec})
    outcome = StreamOutcome()
    got = await _drain(gateway.stream(_request(stream=True), outcome))
    assert len(got) == 3
    assert (outcome.provider, outcome.model, outcome.attempts, outcome.cost) == ("b", "m-b", 2, COST)
    assert pa.closed == 1 and pb.closed == 1
    assert all(d.stats.in_flight == 0 for d in routes["m"].group.deployments)


async def test_a_stream_that_fails_after_its_first_chunk_is_not_failed_over() -> None:
    pa = ScriptedProvider("a", ("m-a",), streams=[[chunk("he"), _down()]])
    pb = ScriptedProvider("b", ("m-b",), streams=[])
    spec = RouteSpec((DeploymentSpec("a", "m-a"), DeploymentSpec("b", "m-b")))
    gateway, _, _, routes = _gateway([pa, pb], {"m": spec})
    outcome = StreamOutcome()
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamUnavailable):
        async for item in gateway.stream(_request(stream=True), outcome):
            seen.append(item)
    assert len(seen) == 1 and pb.requests == []
    assert (outcome.provider, outcome.attempts, outcome.chunks) == ("a", 1, 1)
    assert routes["m"].group.deployments[0].stats.in_flight == 0


async def test_a_stream_closed_early_releases_its_deployment() -> None:
    pa = ScriptedProvider("a", ("m-a",), streams=[[chunk("a"), chunk("b"), chunk("c")]])
    gateway, _, _, routes = _gateway([pa], {"m": RouteSpec((DeploymentSpec("a", "m-a"),))})
    stream = gateway.stream(_request(stream=True), StreamOutcome())
    await anext(stream)
    deployment = routes["m"].group.deployments[0]
    assert deployment.stats.in_flight == 1
    await stream.aclose()  # type: ignore[attr-defined]
    assert deployment.stats.in_flight == 0 and pa.closed == 1


async def test_in_flight_counts_calls_until_they_end() -> None:
    release = asyncio.Event()

    class Slow(ScriptedProvider):
        async def complete(self, request: ChatRequest) -> ChatResponse:
            await release.wait()
            return response("slow", USAGE)

    slow = Slow("a", ("m-a",))
    gateway, _, _, routes = _gateway([slow], {"m": RouteSpec((DeploymentSpec("a", "m-a"),))})
    tasks = [asyncio.create_task(gateway.complete(_request())) for _ in range(3)]
    await asyncio.sleep(0.01)
    deployment = routes["m"].group.deployments[0]
    assert deployment.stats.in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert deployment.stats.in_flight == 0


async def test_a_bare_timeout_without_a_deadline_is_the_providers_own_error() -> None:
    pa = ScriptedProvider("a", ("m-a",), steps=[TimeoutError()])
    gateway, _, _, _ = _gateway([pa], {})
    with pytest.raises(TimeoutError):
        await gateway.complete(_request("m-a"))


def test_route_names_the_first_deployment_and_refuses_one_without_credentials() -> None:
    keyless = CredentialedProvider("keyless", ("m-a",), configured=False)
    pb = ScriptedProvider("b", ("m-b",))
    specs = {
        "m": RouteSpec((DeploymentSpec("b", "m-b"), DeploymentSpec("keyless", "m-a"))),
        "k": RouteSpec((DeploymentSpec("keyless", "m-a"),)),
    }
    gateway, _, _, _ = _gateway([keyless, pb], specs)
    provider, sent = gateway.route(_request("m"))
    assert (provider, sent.model) == (pb, "m-b")
    assert gateway.first_target("m") == (pb, "m-b") and gateway.first_target("k") == (keyless, "m-a")
    with pytest.raises(ProviderNotConfigured, match="FAKE_API_KEY"):
        gateway.route(_request("k"))


class _NativeScripted(ScriptedProvider):
    native_apis = frozenset({"anthropic.messages"})


async def test_the_native_call_reaches_only_providers_that_speak_its_api() -> None:
    native = NativeCall("anthropic.messages", {"model": "m", "max_tokens": 5}, (("anthropic-beta", "x"),))
    speaks = _NativeScripted("a", ("m-a",), steps=[_down()], streams=[[_down()]])
    plain = ScriptedProvider("b", ("m-b",), steps=[response()], streams=[[chunk("hi", USAGE)]])
    spec = RouteSpec((DeploymentSpec("a", "m-a", 3.0), DeploymentSpec("b", "m-b", 1.0)))
    gateway, *_ = _gateway([speaks, plain], {"m": spec})
    request = ChatRequest("m", {"model": "m", "messages": []}, native=native)
    await gateway.complete(request)
    outcome = StreamOutcome()
    async for _ in gateway.stream(replace(request, stream=True), outcome):
        pass
    assert [r.native for r in speaks.requests] == [native, native]
    assert [r.model for r in speaks.requests] == ["m-a", "m-a"]
    assert [r.native for r in plain.requests] == [None, None] and outcome.api == ""


async def test_a_stream_sent_as_its_native_call_says_which_api_its_chunks_speak() -> None:
    native = NativeCall("anthropic.messages", {"model": "m-a", "max_tokens": 5})
    speaks = _NativeScripted("a", ("m-a",), streams=[[chunk("hi", USAGE)]])
    gateway, *_ = _gateway([speaks], {})
    outcome = StreamOutcome()
    request = ChatRequest("m-a", {"model": "m-a", "messages": []}, stream=True, native=native)
    async for _ in gateway.stream(request, outcome):
        pass
    assert outcome.api == "anthropic.messages" and speaks.requests[0].native == native


def test_routes_made_per_model_name_are_kept_in_a_bounded_table() -> None:
    from calcifer.domain.families import ModelFamilies
    from calcifer.domain.gateway import ROUTES_KEPT

    provider = ScriptedProvider("a", ("m-a",))
    gateway, *_ = _gateway([provider], {})
    gateway.registry.families = ModelFamilies([("m-a-", "m-a")])
    for i in range(ROUTES_KEPT + 500):  # every dated name a family matches is a new name
        assert gateway.first_target(f"m-a-2025{i}") == (provider, f"m-a-2025{i}")
    assert len(gateway._single_routes) == ROUTES_KEPT
    assert gateway.first_target("m-a") == (provider, "m-a")


async def test_the_deployments_tried_are_kept_in_order_once_each_and_at_most_eight() -> None:
    names = [f"p{n}" for n in range(10)]
    providers = [ScriptedProvider(name, (f"x{n}",), steps=[_down()]) for n, name in enumerate(names)]
    providers[-1] = ScriptedProvider(names[-1], ("x9",), steps=[response("last", USAGE)])
    spec = RouteSpec(
        tuple(DeploymentSpec(name, f"x{n}", 10.0 - n) for n, name in enumerate(names)), "cheapest"
    )
    gateway, *_ = _gateway(providers, {"m": spec})
    outcome = StreamOutcome()
    _, priced = await gateway.complete(_request(), outcome=outcome)
    assert (priced.provider, outcome.attempts, outcome.failovers) == ("p9", 10, 9)
    assert outcome.deployments == ",".join(f"p{n}/x{n}" for n in range(MAX_DEPLOYMENTS))

    retried = ScriptedProvider("solo", ("m",), steps=[_down(), response("again", USAGE)])
    gateway, *_ = _gateway([retried], {"m": RouteSpec((DeploymentSpec("solo", "m"),))})
    outcome = StreamOutcome()
    await gateway.complete(_request(), outcome=outcome)
    assert (outcome.attempts, outcome.retries, outcome.deployments) == (2, 1, "solo/m")
