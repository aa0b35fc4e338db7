"""Spend control for one request: a key's model list, rate limits and hard budget, before and after.

Before a request goes upstream, `admit` checks the key may use the model, counts it against the key's
requests- and tokens-per-minute, and reserves its worst-case cost against the key's budget. When the
request ends, `close` settles the reservation to the real cost (or releases it when nothing was
delivered) and corrects the token count — exactly once, however the request ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from calcifer.domain.cost import CostCalculator
from calcifer.domain.errors import GatewayError
from calcifer.domain.keys import VirtualKey
from calcifer.domain.levels import NO_CUSTOMER_BUDGET, NO_OWNERS, CustomerPolicy, holds
from calcifer.domain.limits import Limiter, RateDecision, RateLimited, Reservation
from calcifer.domain.ports import Clock, Directory
from calcifer.domain.types import ChatRequest, Usage

DEFAULT_MAX_OUTPUT = 16_384


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
    rate_key: str | None = None
    team_rate_key: str | None = None
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
        if key is not None and (key.rpm_limit is not None or key.tpm_limit is not None):
            admission.rate_key = f"key:{key.id}"
            decision = await self.limiter.hit(admission.rate_key, key.rpm_limit, key.tpm_limit, prompt_bound)
            if not decision.allowed:
                raise RateLimited(decision, tokens=prompt_bound)
            admission.decision = decision
            admission.counted_tokens = prompt_bound
        if team is not None and (team.rpm_limit is not None or team.tpm_limit is not None):
            rate_key = f"team:{team.id}"
            decision = await self.limiter.hit(rate_key, team.rpm_limit, team.tpm_limit, prompt_bound)
            if not decision.allowed:
                await self._uncount(admission)
                raise RateLimited(decision, tokens=prompt_bound, level="team")
            admission.team_rate_key = rate_key
            admission.counted_tokens = prompt_bound
        now = self._clock.now()
        try:
            levels = holds(key, owners, customer, self._customers, now)
        except GatewayError:
            await self._uncount(admission)
            raise
        if levels:
            max_out = request.max_output_tokens or self._max_output(request.model) or DEFAULT_MAX_OUTPUT
            worst = self._calculator.worst_case(request.model, prompt_bound, max_out, now)
            if worst is None:
                await self._uncount(admission)
                raise UnpricedUnderBudget(request.model)
            if worst > 0:  # a model the operator declared free passes even when a budget is spent
                try:
                    admission.reservation = await self.limiter.reserve_levels(levels, worst)
                except GatewayError:
                    await self._uncount(admission)
                    raise
                admission.max_output_tokens = max_out
        return admission

    async def close(
        self, admission: Admission, usage: Usage | None, cost: Decimal | None, *, delivered: bool
    ) -> None:
        """Settle what the request really cost, once. A request that delivered nothing is released; one
        that delivered something with no known cost is charged its whole reservation (never $0)."""
        if admission.closed:
            return
        admission.closed = True
        if admission.reservation is not None:
            if not delivered and cost is None:
                await self.limiter.release(admission.reservation)
            else:
                await self.limiter.settle(admission.reservation, cost)
        used = usage.total_tokens if usage is not None else 0
        if admission.rate_key is not None and used != admission.counted_tokens:
            await self.limiter.add_tokens(admission.rate_key, used - admission.counted_tokens)
        if admission.team_rate_key is not None and used != admission.counted_tokens:
            await self.limiter.add_tokens(admission.team_rate_key, used - admission.counted_tokens)

    async def _uncount(self, admission: Admission) -> None:
        if admission.counted_tokens:
            for rate_key in (admission.rate_key, admission.team_rate_key):
                if rate_key is not None:
                    await self.limiter.add_tokens(rate_key, -admission.counted_tokens)
            admission.counted_tokens = 0


def prompt_bound(body_size: int, messages: int, images: int) -> int:
    """An upper bound of a prompt's tokens without a tokenizer: a token is at least one byte of the
    body, plus each message's framing tokens and a generous allowance per image."""
    return body_size + 8 * messages + 2_000 * images
