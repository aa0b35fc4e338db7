"""The levels beside a key (team, user, member, customer, tags): their values, the holds a request
must fit in, and SpendControl enforcing them all at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import InvalidRequest
from calcifer.domain.levels import (
    NO_CUSTOMER_BUDGET,
    Customer,
    CustomerBlocked,
    CustomerPolicy,
    Member,
    Owners,
    TagBudget,
    Team,
    User,
    baseline_filter,
    holds,
)
from calcifer.domain.limits import MAX_BUDGET, BudgetExceeded, Hold, RateLimited, budget_window
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.spending import ModelNotAllowed, SpendControl, UnpricedUnderBudget
from calcifer.domain.types import Usage
from calcifer.limits.memory import MemoryLimiter
from tests.domain.doubles import FakeClock
from tests.domain.test_spending import NOW, PRICE, key, request

CREATED = datetime(2026, 11, 1, tzinfo=UTC)
D = Decimal


class Directory:
    """A directory that knows the owners given to it (the SQL one is tested in tests/storage)."""

    def __init__(self, owners: Owners) -> None:
        self.value = owners
        self.asked: list[tuple[object, ...]] = []

    async def owners(
        self, team_id: str | None, user_id: str | None, customer: str | None, tags: tuple[str, ...]
    ) -> Owners:
        self.asked.append((team_id, user_id, customer, tags))
        return self.value


def control(
    owners: Owners, policy: CustomerPolicy = NO_CUSTOMER_BUDGET
) -> tuple[SpendControl, MemoryLimiter]:
    pricing = PricingRegistry()
    pricing.register("m", PRICE)
    pricing.register("local", PricingConfig(input_cost_per_1k=D(0), output_cost_per_1k=D(0)))
    limiter = MemoryLimiter(clock=lambda: NOW)
    spend = SpendControl(
        limiter, CostCalculator(pricing), FakeClock(time=NOW), directory=Directory(owners), customers=policy
    )
    return spend, limiter


TEAM = Team("red", "Red", CREATED, max_budget=D("1"), rpm_limit=2, models=("m", "local"))
USER = User("ada", CREATED, name="Ada", email="ada@example.com", max_budget=D("2"), budget_period="weekly")
MEMBER = Member("red", "ada", max_budget=D("3"), budget_period="daily")


def test_holds_list_every_budgeted_level_in_order() -> None:
    owners = Owners(TEAM, USER, MEMBER, None, (("beta", D("5"), "total"),))
    found = holds(key(max_budget=D("9")), owners, "acme", CustomerPolicy(D("0.5")), NOW)
    assert [(h.level, h.owner, h.budget_key, h.limit) for h in found] == [
        ("key", "key_1", "key_1", D("9")),
        ("team", "red", "team:red", D("1")),
        ("user", "ada", "user:ada", D("2")),
        ("member", "red/ada", "member:red/ada", D("3")),
        ("customer", "acme", "customer:acme", D("0.5")),
        ("tag", "beta", "tag:beta", D("5")),
    ]
    assert [h.window for h in found][2:4] == [budget_window("weekly", NOW), budget_window("daily", NOW)]


def test_a_levels_hold_is_its_budget_in_the_window_of_the_day() -> None:
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    owners = Owners(replace(TEAM, max_budget=D("40"), budget_period="monthly"))
    assert holds(None, owners, None, NO_CUSTOMER_BUDGET, before) == [
        Hold("team", "red", "team:red", D("40"), "2026-11")
    ]
    assert [h.window for h in holds(None, owners, None, NO_CUSTOMER_BUDGET, before + 1)] == ["2026-12"]
    richer = Owners(replace(TEAM, max_budget=D("41"), budget_period="monthly"))
    assert [h.limit for h in holds(None, richer, None, NO_CUSTOMER_BUDGET, before)] == [D("41")]
    forever = key(max_budget=D("1"), budget_period="total")
    assert [h.window for h in holds(forever, Owners(), None, NO_CUSTOMER_BUDGET, before)] == ["total"]


def test_a_customer_row_overrides_the_policy_unless_it_has_no_budget() -> None:
    policy = CustomerPolicy(D("1"), "monthly")
    own = Owners(customer=Customer("acme", CREATED, max_budget=D("10")))
    assert [h.limit for h in holds(None, own, "acme", policy, NOW)] == [D("10")]
    unset = Owners(customer=Customer("acme", CREATED))
    assert [(h.limit, h.window) for h in holds(None, unset, "acme", policy, NOW)] == [
        (D("1"), budget_window("monthly", NOW))
    ]
    assert holds(None, Owners(), "acme", NO_CUSTOMER_BUDGET, NOW) == []
    with pytest.raises(CustomerBlocked):
        holds(None, Owners(customer=Customer("x", CREATED, blocked=True)), "x", policy, NOW)


def test_levels_without_budgets_hold_nothing() -> None:
    owners = Owners(replace(TEAM, max_budget=None), replace(USER, max_budget=None), Member("red", "ada"))
    assert holds(key(), owners, None, NO_CUSTOMER_BUDGET, NOW) == []


@pytest.mark.parametrize(
    ("budget_key", "where"),
    [
        ("key_1", {"key": "key_1"}),
        ("team:red", {"team": "red"}),
        ("user:ada", {"user": "ada"}),
        ("member:red/ada", {"team": "red", "user": "ada"}),
        ("customer:acme", {"customer": "acme"}),
        ("tag:beta", {"tag": "beta"}),
    ],
)
def test_each_counter_maps_to_the_report_filter_that_sums_it(budget_key: str, where: dict[str, str]) -> None:
    assert baseline_filter(budget_key) == where


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: Team("", "x", CREATED), "id"),
        (lambda: Team("t", " ", CREATED), "name"),
        (lambda: Team("t", "x", CREATED, models=("",)), "models"),
        (lambda: Team("t", "x", CREATED, rpm_limit=0), "rpm_limit"),
        (lambda: Team("t", "x", CREATED, metadata=[]), "metadata"),  # type: ignore[arg-type]
        (lambda: Team("t", "x", CREATED, metadata={"a": object()}), "metadata"),
        (lambda: User("u", CREATED, max_budget=D(-1)), "max_budget"),
        (lambda: User("u", CREATED, budget_period="hourly"), "budget_period"),  # type: ignore[arg-type]
        (lambda: User("u", CREATED, email=5), "email"),  # type: ignore[arg-type]
        (lambda: Member("t", ""), "user_id"),
        (lambda: Customer("c", CREATED, blocked="yes"), "blocked"),  # type: ignore[arg-type]
        (lambda: TagBudget("", D(1)), "tag"),
        (lambda: TagBudget("t", None), "max_budget"),  # type: ignore[arg-type]
        (lambda: TagBudget("t", MAX_BUDGET + 1), "max_budget"),
        (lambda: TagBudget("t", D(1), "hourly"), "budget_period"),  # type: ignore[arg-type]
    ],
)
def test_invalid_values_name_their_field(make: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        make()  # type: ignore[operator]
    assert caught.value.param == param


def test_team_models_come_as_a_list_from_json() -> None:
    team = Team("t", "x", CREATED, models=["m"])  # type: ignore[arg-type]
    assert team.models == ("m",) and team.allows("m") and not team.allows("other")


async def test_a_team_budget_refuses_and_names_the_team_and_all_levels_settle_together() -> None:
    spend, limiter = control(Owners(TEAM, USER, MEMBER))
    member_key = key(max_budget=D("9"), team_id="red", user_id="ada")
    admission = await spend.admit(member_key, request(max_tokens=100), 400)  # worst case $0.0006
    assert admission.reservation is not None and len(admission.reservation.parts) == 4
    await spend.close(admission, Usage(10, 10), D("0.00003"), delivered=True)
    for budget_key, period in (("team:red", "monthly"), ("user:ada", "weekly"), ("member:red/ada", "daily")):
        assert await limiter.spent(budget_key, budget_window(period, NOW)) == D("0.00003")  # type: ignore[arg-type]
    poor = control(Owners(replace(TEAM, max_budget=D("0.0001"), rpm_limit=None)))[0]
    with pytest.raises(BudgetExceeded) as refused:
        await poor.admit(member_key, request(), 400)
    assert refused.value.level == "team"


async def test_a_team_limits_its_models_and_its_rate() -> None:
    spend, limiter = control(Owners(TEAM))
    member_key = key(team_id="red", tpm_limit=10_000)
    with pytest.raises(ModelNotAllowed):
        await spend.admit(member_key, request(model="other"), 10)
    first = await spend.admit(member_key, request(), 10)
    await spend.close(first, Usage(5, 5), D("0.00001"), delivered=True)
    await spend.admit(member_key, request(), 10)
    with pytest.raises(RateLimited) as limited:
        await spend.admit(member_key, request(), 10)
    assert limited.value.level == "team" and "of the team" in limited.value.message
    assert (await limiter.hit("key:key_1", None, 10_000, 0)).remaining_tokens == 10_000 - 10 - 10


async def test_a_free_model_answers_when_the_budget_is_spent_and_an_unpriced_one_does_not() -> None:
    spend, limiter = control(Owners())
    spent = key(max_budget=D("0.001"))
    await limiter.reserve("key_1", D("0.001"), D("0.001"), "total")  # the whole budget is taken
    with pytest.raises(BudgetExceeded):
        await spend.admit(spent, request(), 10)
    free = await spend.admit(spent, request(model="local"), 10)
    assert free.reservation is None and free.max_output_tokens is None
    with pytest.raises(UnpricedUnderBudget):
        await spend.admit(spent, request(model="unpriced"), 10)


async def test_customers_and_tags_are_budgeted_without_a_key() -> None:
    owners = Owners(tags=(("beta", D("0.0007"), "total"),))
    spend, _ = control(owners, CustomerPolicy(D("1")))
    assert await spend.admit(None, request(), 10) is not None
    tagged = await spend.admit(None, request(), 400, customer="acme", tags=("beta",))
    assert tagged.reservation is not None and len(tagged.reservation.parts) == 2
    with pytest.raises(BudgetExceeded) as refused:
        await spend.admit(None, request(), 400, tags=("beta",))
    assert (refused.value.level, refused.value.owner) == ("tag", "beta")
    blocked = control(Owners(customer=Customer("bad", CREATED, blocked=True)), CustomerPolicy(D("1")))[0]
    with pytest.raises(CustomerBlocked):
        await blocked.admit(key(rpm_limit=5), request(), 10, customer="bad")


async def test_the_directory_is_asked_only_for_a_request_that_names_a_level() -> None:
    spend, _ = control(Owners())
    directory = spend.directory
    assert isinstance(directory, Directory)
    await spend.admit(key(max_budget=D("9")), request(), 10)  # a key of no team or user: nothing to look up
    assert directory.asked == []
    await spend.admit(key(team_id="red"), request(), 10)
    await spend.admit(key(user_id="ada"), request(), 10)
    await spend.admit(key(), request(), 10, customer="acme")
    await spend.admit(None, request(), 10, tags=("beta",))
    assert directory.asked == [
        ("red", None, None, ()),
        (None, "ada", None, ()),
        (None, None, "acme", ()),
        (None, None, None, ("beta",)),
    ]


async def test_a_refused_request_counts_at_no_rate_limit_and_a_team_limit_alone_sets_no_headers() -> None:
    poor_team = replace(TEAM, max_budget=D("0.0001"), rpm_limit=None, tpm_limit=1_000)
    spend, limiter = control(Owners(poor_team))
    limited = key(team_id="red", rpm_limit=1, tpm_limit=10_000)
    with pytest.raises(BudgetExceeded) as refused:  # the team's budget refuses
        await spend.admit(limited, request(), 400)
    assert refused.value.level == "team"
    assert (await limiter.hit("key:key_1", 1, 10_000, 0)).remaining_requests == 0  # its one request is left
    assert (await limiter.hit("team:red", None, 1_000, 0)).remaining_tokens == 1_000
    rated = replace(poor_team, max_budget=None)
    team_only = control(Owners(rated))[0]
    admission = await team_only.admit(key(team_id="red"), request(), 600)
    assert admission.decision is None and [rate.rate_key for rate in admission.rates] == ["team:red"]
    with pytest.raises(RateLimited) as limited_team:
        await team_only.admit(key(team_id="red", tpm_limit=10_000), request(), 600)
    assert limited_team.value.level == "team"
    await team_only.close(admission, Usage(10, 10), D("0.00001"), delivered=True)
    again = await team_only.admit(key(team_id="red", tpm_limit=10_000), request(), 600)
    assert again.decision is not None and again.decision.remaining_tokens == 10_000 - 600
