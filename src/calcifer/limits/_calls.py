"""The `Limiter` calls both adapters build from their two one-step operations, `admit` and `finish`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal

from calcifer.domain.limits import (
    Hold,
    Rate,
    RateDecision,
    RateLimited,
    Reservation,
    rate_decision,
    rate_window,
)


class OneStepLimiter(ABC):
    """`reserve`, `settle`, `release`, `hit` and `add_tokens` as single-level cases of `admit`/`finish`."""

    @abstractmethod
    async def admit(
        self, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], amount: Decimal
    ) -> tuple[list[RateDecision], Reservation | None]: ...

    @abstractmethod
    async def finish(
        self,
        reservation: Reservation | None,
        actual: Decimal | None,
        *,
        release: bool,
        rates: Sequence[Rate],
        tokens: int,
    ) -> None: ...

    @abstractmethod
    def _seconds(self) -> float:
        """Seconds since the epoch, for a decision that needs no state."""

    async def reserve(self, budget_key: str, amount: Decimal, limit: Decimal, window: str) -> Reservation:
        return await self.reserve_levels([Hold("key", budget_key, budget_key, limit, window)], amount)

    async def reserve_levels(self, holds: Sequence[Hold], amount: Decimal) -> Reservation:
        _, reservation = await self.admit((), 0, holds, amount)
        assert reservation is not None
        return reservation

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        await self.finish(reservation, actual, release=False, rates=(), tokens=0)

    async def release(self, reservation: Reservation) -> None:
        await self.finish(reservation, None, release=True, rates=(), tokens=0)

    async def hit(self, rate_key: str, rpm: int | None, tpm: int | None, tokens: int) -> RateDecision:
        if rpm is None and tpm is None:
            return rate_decision(True, None, None, 0, 0, rate_window(self._seconds())[1])
        try:
            decisions, _ = await self.admit([Rate("key", rate_key, rpm, tpm)], tokens, (), Decimal(0))
        except RateLimited as refused:
            return refused.decision
        return decisions[0]

    async def add_tokens(self, rate_key: str, tokens: int) -> None:
        await self.finish(
            None, None, release=False, rates=(Rate("key", rate_key, None, None),), tokens=tokens
        )
