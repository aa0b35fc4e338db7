"""SpendControl: model lists, rate limits and worst-case budget reservations, settled exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator
from calcifer.domain.keys import VirtualKey
from calcifer.domain.limits import BudgetExceeded, RateLimited, budget_window
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.spending import (
    DEFAULT_MAX_OUTPUT,
    OPEN,
    ModelNotAllowed,
    SpendControl,
    UnpricedUnderBudget,
    prompt_bound,
)
from calcifer.domain.types import ChatRequest, Usage
from calcifer.limits.memory import MemoryLimiter
from tests.domain.doubles import FakeClock

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
PRICE = PricingConfig(input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"))


def key(**fields: object) -> VirtualKey:
    values: dict[str, object] = {
        "id": "key_1",
        "name": "k",
        "secret_hash": "x",
        "created_at": datetime.now(UTC),
    }
    values.update(fields)
    return VirtualKey(**values)  # type: ignore[arg-type]


def control(max_output: dict[str, int] | None = None) -> tuple[SpendControl, MemoryLimiter]:
    pricing = PricingRegistry()
    pricing.register("m", PRICE)
    limiter = MemoryLimiter(clock=lambda: NOW)
    clock = FakeClock(time=NOW)
    return SpendControl(limiter, CostCalculator(pricing), clock, max_output=(max_output or {}).get), limiter


def request(model: str = "m", max_tokens: int | None = 100) -> ChatRequest:
    return ChatRequest(model=model, body={"model": model}, max_output_tokens=max_tokens)


async def test_no_key_means_no_limits() -> None:
    spend, _ = control()
    admission = await spend.admit(None, request(), 10)
    assert admission.key is None and admission.may_deliver(10**9)
    await spend.close(admission, None, None, delivered=False)
    assert OPEN.key is None


async def test_models_outside_the_keys_list_are_refused() -> None:
    spend, _ = control()
    with pytest.raises(ModelNotAllowed):
        await spend.admit(key(models=("other",)), request(), 10)


async def test_reservation_is_the_worst_case_and_settles_to_the_real_cost() -> None:
    spend, limiter = control()
    budget = key(max_budget=Decimal("1"))
    admission = await spend.admit(budget, request(max_tokens=100), 1000)
    window = budget_window("total", NOW)
    # 1000 prompt tokens at $0.001/1K + 100 output tokens at $0.002/1K
    assert await limiter.spent("key_1", window) == Decimal("0.0012")
    assert admission.may_deliver(99) and not admission.may_deliver(100)
    await spend.close(admission, Usage(10, 5), Decimal("0.00002"), delivered=True)
    assert await limiter.spent("key_1", window) == Decimal("0.00002")
    await spend.close(admission, Usage(10, 5), Decimal("5"), delivered=True)  # a second close is ignored
    assert await limiter.spent("key_1", window) == Decimal("0.00002")


async def test_nothing_delivered_releases_and_unknown_cost_charges_the_reservation() -> None:
    spend, limiter = control()
    budget = key(max_budget=Decimal("1"))
    window = budget_window("total", NOW)
    released = await spend.admit(budget, request(), 1000)
    await spend.close(released, None, None, delivered=False)
    assert await limiter.spent("key_1", window) == 0
    charged = await spend.admit(budget, request(), 1000)
    await spend.close(charged, None, None, delivered=True)
    assert await limiter.spent("key_1", window) == Decimal("0.0012")


async def test_budget_that_cannot_fit_is_refused_and_gives_tokens_back() -> None:
    spend, limiter = control()
    budget = key(max_budget=Decimal("0.001"), tpm_limit=100_000)
    with pytest.raises(BudgetExceeded):
        await spend.admit(budget, request(), 1000)
    decision = await limiter.hit("key:key_1", None, 100_000, 0)
    assert decision.remaining_tokens == 100_000


async def test_model_maximum_output_and_the_default_bound_the_reservation() -> None:
    spend, limiter = control(max_output={"m": 10})
    window = budget_window("total", NOW)
    admission = await spend.admit(key(max_budget=Decimal("1")), request(max_tokens=None), 0)
    assert admission.max_output_tokens == 10
    assert await limiter.spent("key_1", window) == Decimal("0.00002")
    other, _ = control()
    admitted = await other.admit(key(max_budget=Decimal("1")), request(max_tokens=None), 0)
    assert admitted.max_output_tokens == DEFAULT_MAX_OUTPUT


async def test_unpriced_models_are_refused_under_a_budget() -> None:
    spend, _ = control()
    with pytest.raises(UnpricedUnderBudget):
        await spend.admit(key(max_budget=Decimal("1"), rpm_limit=5), request(model="free"), 10)
    allowed = await spend.admit(key(rpm_limit=5), request(model="free"), 10)
    assert allowed.reservation is None


async def test_rate_limits_count_requests_and_correct_tokens_afterwards() -> None:
    spend, _ = control()
    limited = key(rpm_limit=2, tpm_limit=1000)
    first = await spend.admit(limited, request(), 300)
    assert first.decision is not None and first.decision.remaining_requests == 1
    await spend.close(first, Usage(20, 10), Decimal("0.0001"), delivered=True)
    second = await spend.admit(limited, request(), 300)
    assert second.decision is not None and second.decision.remaining_tokens == 1000 - 30 - 300
    await spend.close(second, None, None, delivered=False)
    with pytest.raises(RateLimited):
        await spend.admit(limited, request(), 10)


def test_prompt_bound_covers_bytes_framing_and_images() -> None:
    assert prompt_bound(100, 2, 1) == 100 + 16 + 2000


async def test_exact_token_estimates_need_no_correction_and_empty_prompts_nothing_to_give_back() -> None:
    spend, limiter = control()
    exact = await spend.admit(key(tpm_limit=1000), request(), 30)
    await spend.close(exact, Usage(20, 10), Decimal("0.00004"), delivered=True)
    decision = await limiter.hit("key:key_1", None, 1000, 0)
    assert decision.remaining_tokens == 970
    with pytest.raises(UnpricedUnderBudget):
        await spend.admit(key(id="key_2", tpm_limit=1000, max_budget=Decimal("1")), request(model="free"), 0)
    assert (await limiter.hit("key:key_2", None, 1000, 0)).remaining_tokens == 1000
