"""The levels a request is spent at beside its key: the key's team and user (and the user's budget as a
member of that team), the end customer it serves, and its tags.

Precedence is one rule: a request is refused if *any* level it touches cannot fit its worst-case cost.
The reservation is taken at every level at once (`Limiter.reserve_levels`: all or none) and settled or
released at every level together. `holds` lists a request's levels, in the order a refusal names the
first that cannot fit: key, team, user, member, customer, tags.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from calcifer.domain.checks import (
    ID_MAX,
    check_budget,
    check_id,
    check_metadata,
    check_models,
    check_name,
    check_rate_limits,
)
from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.keys import VirtualKey
from calcifer.domain.limits import BudgetPeriod, Hold, budget_window

_DAY = 86_400  # seconds: every budget window starts at a UTC midnight


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    created_at: datetime
    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "monthly"
    models: tuple[str, ...] = ()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.models, list):
            object.__setattr__(self, "models", tuple(self.models))
        check_id(self.id)
        check_budget(self.max_budget, self.budget_period)
        check_name(self.name)
        check_models(self.models)
        check_rate_limits(self.rpm_limit, self.tpm_limit)
        check_metadata(self.metadata)

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models


@dataclass(frozen=True, slots=True)
class User:
    """An internal developer: keys may belong to one; teams list them as members."""

    id: str
    created_at: datetime
    name: str | None = None
    email: str | None = None
    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "monthly"
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_id(self.id)
        check_budget(self.max_budget, self.budget_period)
        for param in ("name", "email"):
            value = getattr(self, param)
            if value is not None and (not isinstance(value, str) or len(value) > ID_MAX):
                raise InvalidRequest(f"'{param}' must be a string of at most 256 characters.", param=param)
        check_metadata(self.metadata)


@dataclass(frozen=True, slots=True)
class Member:
    """A user in a team, with an optional budget of their own inside that team."""

    team_id: str
    user_id: str
    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "monthly"

    def __post_init__(self) -> None:
        check_id(self.user_id, "user_id")
        check_budget(self.max_budget, self.budget_period)


@dataclass(frozen=True, slots=True)
class Customer:
    """An end customer with a budget of their own (overriding the default policy), or blocked."""

    id: str
    created_at: datetime
    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "daily"
    blocked: bool = False
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_id(self.id)
        check_budget(self.max_budget, self.budget_period)
        if not isinstance(self.blocked, bool):
            raise InvalidRequest("'blocked' must be true or false.", param="blocked")
        check_metadata(self.metadata)


@dataclass(frozen=True, slots=True)
class TagBudget:
    """A budget shared by every request with a tag (a project or feature), over its period."""

    tag: str
    max_budget: Decimal
    budget_period: BudgetPeriod = "monthly"

    def __post_init__(self) -> None:
        check_id(self.tag, "tag")
        if self.max_budget is None:
            raise InvalidRequest(
                "'max_budget' is required: a tag budget is a number of USD.", param="max_budget"
            )
        check_budget(self.max_budget, self.budget_period)


@dataclass(frozen=True, slots=True)
class Owners:
    """What a request is spent for beyond its key, as the directory knows them (None: unknown)."""

    team: Team | None = None
    user: User | None = None
    member: Member | None = None
    customer: Customer | None = None
    tags: tuple[tuple[str, Decimal, BudgetPeriod], ...] = ()  # (tag, budget, period) of budgeted tags


NO_OWNERS = Owners()


@dataclass(frozen=True, slots=True)
class CustomerPolicy:
    """The budget of every customer without a row of their own (None: customers have no budget)."""

    max_budget: Decimal | None = None
    budget_period: BudgetPeriod = "daily"


NO_CUSTOMER_BUDGET = CustomerPolicy()


class CustomerBlocked(GatewayError):
    kind = "permission_error"
    code = "customer_blocked"
    refusal = "auth"


def holds(
    key: VirtualKey | None,
    owners: Owners,
    customer: str | None,
    policy: CustomerPolicy,
    now: float,
) -> list[Hold]:
    """Every budget a request must fit in, first the key's."""
    day = int(now // _DAY)
    found: list[Hold] = []
    if key is not None and key.max_budget is not None:
        found.append(_hold("key", key.id, key.max_budget, key.budget_period, day))
    team, user, member = owners.team, owners.user, owners.member
    if team is not None and team.max_budget is not None:
        found.append(_hold("team", team.id, team.max_budget, team.budget_period, day))
    if user is not None and user.max_budget is not None:
        found.append(_hold("user", user.id, user.max_budget, user.budget_period, day))
    if member is not None and member.max_budget is not None:
        owner = f"{member.team_id}/{member.user_id}"
        found.append(_hold("member", owner, member.max_budget, member.budget_period, day))
    if customer is not None:
        row = owners.customer
        if row is not None and row.blocked:
            raise CustomerBlocked(f"The customer '{customer}' is blocked on this gateway.", param="user")
        limit, period = (row.max_budget, row.budget_period) if row is not None else (None, "daily")
        if row is None or limit is None:
            limit, period = policy.max_budget, policy.budget_period
        if limit is not None:
            found.append(_hold("customer", customer, limit, period, day))
    for tag, limit, period in owners.tags:
        found.append(_hold("tag", tag, limit, period, day))
    return found


@functools.lru_cache(maxsize=4096)
def _hold(level: str, owner: str, limit: Decimal, period: BudgetPeriod, day: int) -> Hold:
    """The `Hold` of `owner`'s budget at `level` on UTC day `day`; its counter is the key's id for a key
    and `level:owner` for every other level. Cached: a request's levels are mostly the same few each
    time, and a window changes only at midnight."""
    budget_key = owner if level == "key" else f"{level}:{owner}"
    return Hold(level, owner, budget_key, limit, budget_window(period, float(day * _DAY)))


def baseline_filter(budget_key: str) -> dict[str, str]:
    """The spend-report filter that sums what a budget counter (`Hold.budget_key`) covers."""
    level, _, owner = budget_key.partition(":")
    if level == "member":
        team, _, user = owner.partition("/")
        return {"team": team, "user": user}
    if level in ("team", "user", "customer", "tag") and owner:
        return {level: owner}
    return {"key": budget_key}
