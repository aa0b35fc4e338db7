"""Pure budget and rate-limit helpers: windows, money units, decisions and error messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from calcifer.domain.errors import GatewayError
from calcifer.domain.limits import (
    MAX_BUDGET,
    BudgetExceeded,
    BudgetPeriod,
    RateLimited,
    budget_window,
    check_amount,
    check_limit,
    format_usd,
    from_units,
    rate_decision,
    rate_window,
    to_units,
    window_bounds,
    window_ttl,
)

D = Decimal


def test_total_budget_has_one_window() -> None:
    assert budget_window("total", 0.0) == "total"
    assert budget_window("total", datetime(2030, 5, 1, tzinfo=UTC)) == "total"


@pytest.mark.parametrize(
    ("now", "daily", "monthly"),
    [
        (datetime(2026, 11, 27, 0, 0, tzinfo=UTC), "2026-11-27", "2026-11"),
        (datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), "2026-11-30", "2026-11"),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2026-12-31", "2026-12"),
        # Windows are UTC calendar periods, whatever the zone of `now`.
        (datetime(2027, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2026-12-31", "2026-12"),
        (datetime(2026, 11, 27, 22, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-11-28", "2026-11"),
        (datetime(2026, 2, 28, 12, 0), "2026-02-28", "2026-02"),  # naive: taken as UTC
        (1_800_000_000.0, "2027-01-15", "2027-01"),  # epoch seconds, as Clock.now() gives
    ],
)
def test_daily_and_monthly_windows(now: datetime | float, daily: str, monthly: str) -> None:
    assert budget_window("daily", now) == daily
    assert budget_window("monthly", now) == monthly


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="weekly"):
        budget_window("hourly", 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "week", "monday"),
    [
        (datetime(2026, 12, 1, 12, tzinfo=UTC), "2026-W49", datetime(2026, 11, 30, tzinfo=UTC)),
        (datetime(2026, 11, 29, 23, 59, tzinfo=UTC), "2026-W48", datetime(2026, 11, 23, tzinfo=UTC)),
        (datetime(2027, 1, 1, tzinfo=UTC), "2026-W53", datetime(2026, 12, 28, tzinfo=UTC)),  # ISO year
        (datetime(2026, 11, 30, 1, tzinfo=timezone(timedelta(hours=3))), "2026-W48", None),
    ],
)
def test_weekly_windows_are_iso_weeks_from_monday_utc(
    now: datetime, week: str, monday: datetime | None
) -> None:
    assert budget_window("weekly", now) == week
    start, end = window_bounds(week)
    assert start is not None and end == start + timedelta(days=7) and start.weekday() == 0
    if monday is not None:
        assert start == monday
    assert window_ttl(week) == 9 * 86_400


def test_window_bounds() -> None:
    assert window_bounds("total") == (None, None)
    assert window_bounds("2026-11-27") == (
        datetime(2026, 11, 27, tzinfo=UTC),
        datetime(2026, 11, 28, tzinfo=UTC),
    )
    assert window_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert window_bounds("2028-02") == (datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="not a budget window"):
        window_bounds("2026")


def test_window_ttl_outlives_the_window() -> None:
    assert window_ttl("total") is None
    assert window_ttl("2026-11-27") == 3 * 86_400
    assert window_ttl("2026-01") == 33 * 86_400
    assert window_ttl("2026-02") == 30 * 86_400


def test_money_units_round_toward_staying_within_budget() -> None:
    assert to_units(D("0.000000000001")) == 1
    assert to_units(D("1e-13")) == 1
    assert to_units(D("1e-13"), round_up=False) == 0
    assert to_units(D("1.23")) == 1_230_000_000_000
    assert from_units(1_230_000_000_001) == D("1.230000000001")
    assert check_amount(D("0")) == 0
    assert check_amount(D("-0")) == 0
    assert check_limit(D("1.0000000000009")) == 10**12
    assert check_limit(MAX_BUDGET) == 9 * 10**18 < 2**63
    with pytest.raises(ValueError, match="finite"):
        to_units(D("NaN"))
    with pytest.raises(ValueError, match="negative"):
        check_amount(D("-0.01"), "actual cost")
    with pytest.raises(ValueError, match="largest supported"):
        check_amount(MAX_BUDGET + D("0.01"))
    with pytest.raises(ValueError, match="negative"):
        check_limit(D("-1"))
    with pytest.raises(ValueError, match="largest supported"):
        check_limit(MAX_BUDGET + 1)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (D("4.75"), "$4.75"),
        (D("5"), "$5.00"),
        (D("0.5"), "$0.50"),
        (D("0"), "$0.00"),
        (D("0.000012345678"), "$0.000012345678"),
        (D("1E+3"), "$1000.00"),
        (D("1e-12"), "$0.000000000001"),
    ],
)
def test_format_usd(amount: Decimal, text: str) -> None:
    assert format_usd(amount) == text


def test_rate_windows_are_minute_aligned() -> None:
    assert rate_window(1_800_000_000.0) == (30_000_000, 60.0)
    assert rate_window(1_800_000_059.5) == (30_000_000, 0.5)
    assert rate_window(1_800_000_060.0) == (30_000_001, 60.0)


def test_rate_decisions() -> None:
    allowed = rate_decision(True, 10, None, 4, 500, 12.5)
    assert (allowed.remaining_requests, allowed.remaining_tokens, allowed.retry_after) == (6, None, None)
    assert allowed.reset_requests == allowed.reset_tokens == 12.5
    refused = rate_decision(False, 10, 100, 10, 120, 3.0)
    assert (refused.remaining_requests, refused.remaining_tokens, refused.retry_after) == (0, 0, 3.0)


def test_budget_exceeded_states_the_remaining_budget() -> None:
    error = BudgetExceeded(D("0.25"), requested=D("1.5"))
    assert isinstance(error, GatewayError)
    assert (error.kind, error.code) == ("budget_exceeded", "budget_exceeded")
    assert (
        error.message
        == "Budget exceeded: $0.25 of the budget remains, and this request may cost up to $1.50."
    )
    overdrawn = BudgetExceeded(D("-3"))
    assert overdrawn.remaining == 0
    assert overdrawn.message == "Budget exceeded: $0.00 of the budget remains."


def test_rate_limited_names_the_limit_that_refused() -> None:
    by_requests = RateLimited(rate_decision(False, 10, 1000, 10, 10, 41.2))
    assert by_requests.kind == "rate_limit_error" and by_requests.code == "rate_limit_exceeded"
    assert by_requests.message == "Rate limit reached: 10 requests per minute. Try again in 42s."
    by_tokens = RateLimited(rate_decision(False, 10, 1000, 3, 900, 5.0), tokens=200)
    assert by_tokens.message == (
        "Rate limit reached: 1000 tokens per minute (this request needs 200). Try again in 5s."
    )
    assert by_tokens.decision.retry_after == 5.0


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly"])
def test_epoch_seconds_name_the_same_window_as_the_moment_all_day(period: BudgetPeriod) -> None:
    # Windows from epoch seconds are looked up by their UTC day: the day's first and last instants and
    # the instants either side of midnight must name what the datetime itself names.
    midnight = datetime(2027, 1, 1, tzinfo=UTC).timestamp()  # a Friday, a new month and ISO week 53
    for seconds in (midnight - 86_400, midnight - 0.001, midnight, midnight + 43_200, midnight + 86_399.9):
        moment = datetime.fromtimestamp(seconds, UTC)
        assert budget_window(period, seconds) == budget_window(period, moment), (period, moment)
