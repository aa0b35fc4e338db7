"""The spend ledger: one row per answered request, and reports that group those rows.

Writes leave the response path: `SpendLedger.record` only enqueues; an adapter batches the rows into its
store in the background and drains what is queued when it is closed. Cost is an exact `Decimal`, and
`None` means *unpriced* — never counted as 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol, get_args, runtime_checkable

from calcifer.domain.errors import InvalidRequest

GroupBy = Literal["key", "model", "provider", "user", "team", "day"]
GROUP_BY: tuple[GroupBy, ...] = get_args(GroupBy)

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SPACED_OFFSET = re.compile(r"^(.+T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One request as the ledger keeps it.

    Token counts follow `Usage`: cached and cache-write tokens are parts of the prompt, reasoning tokens
    part of the completion. For a stream cut short (`cut_short`), the counts are what was delivered.
    """

    time: datetime
    request_id: str
    key_id: str | None
    user: str | None
    team: str | None
    model: str
    provider: str
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal | None = None
    price_version: str = ""
    latency_ms: int = 0
    streamed: bool = False
    cut_short: bool = False
    estimated: bool = False
    cache_hit: bool = False
    cost_saved: Decimal | None = None  # a cache hit: what the answer cost when it was made upstream

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("SpendRecord.time must be timezone-aware (UTC)")
        if self.cost is not None and not self.cost.is_finite():
            raise ValueError("SpendRecord.cost must be a finite Decimal or None")
        if self.cost_saved is not None and not self.cost_saved.is_finite():
            raise ValueError("SpendRecord.cost_saved must be a finite Decimal or None")


@dataclass(frozen=True, slots=True)
class SpendGroup:
    """Totals of the requests that share one group value (`group` is None for rows without one).

    `cost` sums the priced requests only, and is None when none of them was priced; `unpriced` counts
    the requests without a price, so a reader knows when `cost` is a lower bound.
    """

    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    unpriced: int = 0

    def __add__(self, other: SpendGroup) -> SpendGroup:
        if self.cost is None:
            cost = other.cost
        elif other.cost is None:
            cost = self.cost
        else:
            cost = self.cost + other.cost
        return SpendGroup(
            group=None,
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost,
            unpriced=self.unpriced + other.unpriced,
        )


EMPTY_GROUP = SpendGroup(group=None, requests=0, prompt_tokens=0, completion_tokens=0, cost=None)


@dataclass(frozen=True, slots=True)
class SpendReport:
    """Spend between `since` (inclusive) and `until` (exclusive), grouped by one dimension."""

    group_by: GroupBy
    since: datetime | None
    until: datetime | None
    groups: tuple[SpendGroup, ...]

    @property
    def total(self) -> SpendGroup:
        total = EMPTY_GROUP
        for group in self.groups:
            total = total + group
        return total


@runtime_checkable
class SpendLedger(Protocol):
    """Where spend rows go and where reports come from."""

    def record(self, row: SpendRecord) -> None:
        """Enqueue `row` for writing; never blocks and never waits for the store."""
        ...

    async def query(
        self,
        group_by: GroupBy,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
    ) -> SpendReport:
        """Spend in [since, until), grouped; only `key_id`'s rows when it is given."""
        ...

    async def start(self) -> None:
        """Start the background writer."""
        ...

    async def aclose(self) -> None:
        """Write everything queued so far, then stop the writer."""
        ...


def parse_group_by(text: str, param: str = "group_by") -> GroupBy:
    """`text` as a grouping dimension, or `InvalidRequest` naming `param`."""
    for choice in GROUP_BY:
        if text == choice:
            return choice
    raise InvalidRequest(f"'{text}' is not a valid {param}: use one of {', '.join(GROUP_BY)}.", param=param)


def parse_time(text: str, now: datetime | None = None, param: str = "since") -> datetime:
    """An ISO 8601 date or datetime (UTC when it names no zone), or a span back from `now`: `7d`, `24h`,
    `30m`, `90s`, `2w`. Raises `InvalidRequest` naming `param` otherwise."""
    relative = _RELATIVE.match(text)
    try:
        if relative is not None:
            span = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
            return (now or datetime.now(UTC)).astimezone(UTC) - span
        # A '+' left unescaped in a query string arrives as a space: '...T00:00:00 01:00'.
        parsed = datetime.fromisoformat(_SPACED_OFFSET.sub(r"\1+\2", text.strip()))
        # In UTC (UTC when it names no zone); 0001-01-01T00:00+14:00 has no UTC time: it overflows.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"'{text}' is not a valid {param}: use an ISO 8601 datetime such as 2025-01-31T00:00:00Z, "
            "or a span such as 7d or 24h.",
            param=param,
        ) from None
