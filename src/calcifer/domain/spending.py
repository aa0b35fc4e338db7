"""Spend control for one request: a key's model list, rate limits and hard budget, before and after.

Before a request goes upstream, `admit` checks the key may use the model, then in one limiter call
(`Limiter.admit`: one script on Redis) counts it against the key's and the team's requests- and
tokens-per-minute and reserves its worst-case cost at every budget level: all or nothing, so a refused
request counts nowhere. When the request ends, `close` settles the reservation to the real cost (or
releases it when nothing was delivered) and corrects the token counts, again in one call
(`Limiter.finish`) — exactly once, however the request ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import GatewayError
from calcifer.domain.keys import VirtualKey
from calcifer.domain.levels import NO_CUSTOMER_BUDGET, NO_OWNERS, CustomerPolicy, holds
from calcifer.domain.limits import Limiter, Rate, RateDecision, Reservation, rate_at
from calcifer.domain.ports import Clock, Directory
from calcifer.domain.types import ChatRequest, Usage

DEFAULT_MAX_OUTPUT = 16_384
_FREE = Decimal(0)


class ModelNotAllowed(GatewayError):
    kind = "permission_error"
    code = "model_not_allowed"
    refusal = "auth"

    def __init__(self, model: str) -> None:
        super().__init__(f"This key may not use the model '{model}'.", param="model")


class UnpricedUnderBudget(GatewayError):
    kind = "permission_error"
    code = "model_unpriced"
    refusal = "budget"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' has no price, so a key with a budget cannot use it: add a price for it "
            "in the gateway's configuration.",
            param="model",
        )


@dataclass(slots=True)
class Admission:
    """What `admit` granted a request; `close` gives back what it did not use."""

    key: VirtualKey | None
    rates: Sequence[Rate] = ()
    """The rate limits this request was counted at (its key's, its team's), for the token correction."""
    decision: RateDecision | None = None
    counted_tokens: int = 0
    reservation: Reservation | None = None
    max_output_tokens: int | None = None
    closed: bool = False

    def may_deliver(self, completion_tokens: int) -> bool:
        """Whether a stream that has delivered this many tokens is still within its reservation."""
        return self.max_output_tokens is None or completion_tokens < self.max_output_tokens


OPEN = Admission(key=None)


class SpendControl:
    def __init__(
        self,
        limiter: Limiter,
        calculator: CostCalculator,
        clock: Clock,
        *,
        max_output: Callable[[str], int | None] = lambda _model: None,
        directory: Directory | None = None,
        customers: CustomerPolicy = NO_CUSTOMER_BUDGET,
    ) -> None:
        self.limiter = limiter
        self._calculator = calculator
        self._clock = clock
        self._max_output = max_output
        self.directory = directory
        self._customers = customers

    async def admit(
        self,
        key: VirtualKey | None,
        request: ChatRequest,
        prompt_bound: int,
        *,
        customer: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> Admission:
        """Admit a request whose prompt has at most `prompt_bound` tokens, or raise why not: the key's
        models and limits, its team's models and limits, and a budget reservation at every level."""
        if key is None and customer is None and not tags:
            return OPEN
        owners = NO_OWNERS
        team_id = key.team_id if key is not None else None
        user_id = key.user_id if key is not None else None
        if self.directory is not None and (team_id or user_id or customer or tags):  # else nothing to look up
            owners = await self.directory.owners(team_id, user_id, customer, tags)
        if key is not None and not key.allows(request.model):
            raise ModelNotAllowed(request.model)
        team = owners.team
        if team is not None and not team.allows(request.model):
            raise ModelNotAllowed(request.model)
        admission = Admission(key=key)
        rates: list[Rate] = []
        if key is not None and (key.rpm_limit is not None or key.tpm_limit is not None):
            rates.append(rate_at("key", key.id, key.rpm_limit, key.tpm_limit))
        if team is not None and (team.rpm_limit is not None or team.tpm_limit is not None):
            rates.append(rate_at("team", team.id, team.rpm_limit, team.tpm_limit))
        now = self._clock.now()
        levels = holds(key, owners, customer, self._customers, now)
        worst = _FREE
        if levels:
            max_out = request.max_output_tokens or self._max_output(request.model) or DEFAULT_MAX_OUTPUT
            priced = self._calculator.worst_case(request.model, prompt_bound, max_out, now)
            if priced is None:
                raise UnpricedUnderBudget(request.model)
            if priced > 0:  # a model the operator declared free passes even when a budget is spent
                worst = priced
                admission.max_output_tokens = max_out
            else:
                levels = []
        if not rates and not levels:
            return admission
        # One limiter call (one script on Redis) for every level's rate limits and budget: all or none.
        decisions, admission.reservation = await self.limiter.admit(rates, prompt_bound, levels, worst)
        if rates:
            admission.rates = rates
            admission.counted_tokens = prompt_bound
            if rates[0].level == "key":
                admission.decision = decisions[0]
        return admission

    async def close(
        self, admission: Admission, usage: Usage | None, cost: Decimal | None, *, delivered: bool
    ) -> None:
        """Settle what the request really cost, once. A request that delivered nothing is released; one
        that delivered something with no known cost is charged its whole reservation (never $0). The
        token counts of its rate limits are corrected to the real usage in the same limiter call."""
        if admission.closed:
            return
        admission.closed = True
        used = usage.total_tokens if usage is not None else 0
        tokens = used - admission.counted_tokens if admission.rates else 0
        if admission.reservation is None and not tokens:
            return
        await self.limiter.finish(
            admission.reservation,
            cost,
            release=not delivered and cost is None,
            rates=admission.rates,
            tokens=tokens,
        )


def prompt_bound(body_size: int, messages: int, images: int) -> int:
    """An upper bound of a prompt's tokens without a tokenizer: a token is at least one byte of the
    body, plus each message's framing tokens and a generous allowance per image."""
    return body_size + 8 * messages + 2_000 * images
