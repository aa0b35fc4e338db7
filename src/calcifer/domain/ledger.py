"""The spend ledger: one row per request, and reports that group those rows.

Writes leave the response path: `SpendLedger.record` only enqueues; an adapter batches the rows into its
store in the background and drains what is queued when it is closed. Cost is an exact `Decimal`, and
`None` means *unpriced* — never counted as 0.

Each row says how the request ended (`Outcome`): answered, refused (by a budget, a rate limit, or
authentication and permissions) or failed; reports count the three apart, so a refused request is
never reported as a request that was answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol, get_args, runtime_checkable

from calcifer.domain.errors import InvalidRequest

GroupBy = Literal["key", "team", "user", "customer", "tag", "model", "provider", "day"]
GROUP_BY: tuple[GroupBy, ...] = get_args(GroupBy)
MAX_GROUP_BY = 2
"""A report groups by one dimension or by two at once (e.g. `team,model`)."""

Outcome = Literal["answered", "refused_budget", "refused_rate", "refused_auth", "failed"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
Refusal = Literal["budget", "rate_limit", "auth"]
_REFUSED: dict[str | None, Outcome] = {
    "budget": "refused_budget",
    "rate_limit": "refused_rate",
    "auth": "refused_auth",
}

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SPACED_OFFSET = re.compile(r"^(.+T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One request as the ledger keeps it.

    Token counts follow `Usage`: cached and cache-write tokens are parts of the prompt, reasoning tokens
    part of the completion. For a stream cut short (`cut_short`), the counts are what was delivered.
    A new field goes at the end: the ledger journal writes the fields in order, and a journal left by
    the previous version must replay.
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
    customer: str | None = None
    tags: tuple[str, ...] = ()
    outcome: Outcome = "answered"
    # The upstream attempts (0: none, as for a cache hit or a refusal; None: not recorded, a row older
    # than these fields), the deployments tried in order (`provider/model`, comma-separated, at most
    # `types.MAX_DEPLOYMENTS`), and a stream's time to first byte in milliseconds.
    attempts: int | None = None
    deployments: str = ""
    ttfb_ms: int | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("SpendRecord.time must be timezone-aware (UTC)")
        if self.cost is not None and not self.cost.is_finite():
            raise ValueError("SpendRecord.cost must be a finite Decimal or None")
        if self.cost_saved is not None and not self.cost_saved.is_finite():
            raise ValueError("SpendRecord.cost_saved must be a finite Decimal or None")


@dataclass(frozen=True, slots=True)
class SpendGroup:
    """Totals of the requests that share one group (`values`: one per grouping dimension, None for
    rows without one).

    `requests` counts the answered requests; refused ones (by a budget, a rate limit, authentication)
    and failed ones are counted apart. `cost` sums the priced requests only, and is None when none of
    them was priced; `unpriced` counts the requests without a price, so a reader knows when `cost` is
    a lower bound. `cost_saved` is what answers from the cache would have cost upstream.
    """

    values: tuple[str | None, ...]
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    unpriced: int = 0
    refused_budget: int = 0
    refused_rate: int = 0
    refused_auth: int = 0
    failed: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_saved: Decimal = Decimal(0)

    @property
    def group(self) -> str | None:
        """The first dimension's value (the only one in a report grouped by one dimension)."""
        return self.values[0] if self.values else None

    def __add__(self, other: SpendGroup) -> SpendGroup:
        if self.cost is None:
            cost = other.cost
        elif other.cost is None:
            cost = self.cost
        else:
            cost = self.cost + other.cost
        return SpendGroup(
            values=(),
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost,
            unpriced=self.unpriced + other.unpriced,
            refused_budget=self.refused_budget + other.refused_budget,
            refused_rate=self.refused_rate + other.refused_rate,
            refused_auth=self.refused_auth + other.refused_auth,
            failed=self.failed + other.failed,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_saved=self.cost_saved + other.cost_saved,
        )


EMPTY_GROUP = SpendGroup(values=(), requests=0, prompt_tokens=0, completion_tokens=0, cost=None)


@dataclass(frozen=True, slots=True)
class SpendReport:
    """Spend between `since` (inclusive) and `until` (exclusive), grouped by one or two dimensions."""

    group_by: tuple[GroupBy, ...]
    since: datetime | None
    until: datetime | None
    groups: tuple[SpendGroup, ...]

    @property
    def total(self) -> SpendGroup:
        total = EMPTY_GROUP
        for group in self.groups:
            total = total + group
        return total


SpendFilter = dict[str, str]
"""Rows a report is limited to, by dimension: {"key": id, "team": id, "user": id, "customer": id}."""


@runtime_checkable
class SpendLedger(Protocol):
    """Where spend rows go and where reports come from."""

    def record(self, row: SpendRecord) -> None:
        """Enqueue `row` for writing; never blocks and never waits for the store."""
        ...

    async def query(
        self,
        group_by: GroupBy | tuple[GroupBy, ...],
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
        *,
        where: SpendFilter | None = None,
    ) -> SpendReport:
        """Spend in [since, until) — whole UTC days: `since` is taken back to its day's start and
        `until` on to the next day's — grouped; only `key_id`'s rows when it is given, and only the
        rows matching every dimension in `where`."""
        ...

    async def start(self) -> None:
        """Start the background writer."""
        ...

    async def aclose(self) -> None:
        """Write everything queued so far, then stop the writer."""
        ...


def parse_group_by(text: str, param: str = "group_by") -> tuple[GroupBy, ...]:
    """`text` as one grouping dimension or two separated by a comma (`team,model`), or
    `InvalidRequest` naming `param`."""
    names = [part.strip() for part in text.split(",")]
    chosen: list[GroupBy] = []
    for name in names:
        choice = next((c for c in GROUP_BY if c == name), None)
        if choice is None:
            raise InvalidRequest(
                f"'{name}' is not a valid {param}: use one of {', '.join(GROUP_BY)}, or two of them "
                "separated by a comma.",
                param=param,
            )
        if choice in chosen:
            raise InvalidRequest(f"'{name}' is given twice in {param}.", param=param)
        chosen.append(choice)
    if len(chosen) > MAX_GROUP_BY:
        raise InvalidRequest(f"{param} takes at most {MAX_GROUP_BY} dimensions.", param=param)
    return tuple(chosen)


def outcome_of(status: int, refusal: str | None, delivered: bool) -> Outcome:
    """How a request ended: refused when a budget, a rate limit or authentication refused it;
    answered when its status is a success or it delivered something (a stream cut short); else
    failed."""
    refused = _REFUSED.get(refusal)
    if refused is not None:
        return refused
    return "answered" if status < 400 or delivered else "failed"


def day_span(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """[since, until) widened to whole UTC days, as reports read daily rollups."""
    start = None if since is None else _day_start(since)
    end = None
    if until is not None:
        end = _day_start(until)
        if end != until.astimezone(UTC):
            end += timedelta(days=1)
    return start, end


def _day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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
