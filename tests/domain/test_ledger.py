"""Spend values and the parsing of report parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.ledger import (
    EMPTY_GROUP,
    GROUP_BY,
    SpendGroup,
    SpendRecord,
    SpendReport,
    day_span,
    outcome_of,
    parse_group_by,
    parse_time,
)

NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def group(name: str | None, requests: int, cost: Decimal | None, unpriced: int = 0) -> SpendGroup:
    return SpendGroup((name,), requests, requests * 10, requests * 2, cost, unpriced)


def test_a_record_needs_an_aware_time_and_a_finite_cost() -> None:
    record = SpendRecord(NOW, "r", None, None, None, "m", "p", 200)
    assert (record.cost, record.streamed, record.prompt_tokens) == (None, False, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        SpendRecord(datetime(2026, 1, 1), "r", None, None, None, "m", "p", 200)
    for bad in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError, match="finite"):
            SpendRecord(NOW, "r", None, None, None, "m", "p", 200, cost=bad)
        with pytest.raises(ValueError, match="cost_saved must be a finite"):
            SpendRecord(NOW, "r", None, None, None, "m", "p", 200, cache_hit=True, cost_saved=bad)


def test_totals_add_priced_costs_and_count_unpriced_requests() -> None:
    refused = SpendGroup(
        ("d",),
        0,
        0,
        0,
        Decimal(0),
        refused_budget=1,
        refused_rate=2,
        refused_auth=3,
        failed=4,
        cached_tokens=5,
        cache_write_tokens=6,
        reasoning_tokens=7,
        cost_saved=Decimal("0.5"),
    )
    report = SpendReport(
        ("model",),
        None,
        None,
        (group("a", 2, Decimal("0.1")), group("b", 3, None, 3), group("c", 1, Decimal("0.2"), 1), refused),
    )
    total = report.total
    assert total == SpendGroup(
        (), 6, 60, 12, Decimal("0.3"), 4, 1, 2, 3, 4, 5, 6, 7, cost_saved=Decimal("0.5")
    )
    assert total.group is None and refused.group == "d"


def test_a_total_of_unpriced_groups_is_unpriced_not_zero() -> None:
    assert SpendReport(("model",), None, None, (group("a", 2, None, 2),)).total.cost is None
    assert SpendReport(("model",), None, None, ()).total == EMPTY_GROUP
    assert (group("a", 1, None) + group("b", 1, Decimal(0))).cost == Decimal(0)


@pytest.mark.parametrize("name", GROUP_BY)
def test_group_by_names(name: str) -> None:
    assert parse_group_by(name) == (name,)


def test_group_by_takes_two_dimensions_at_once() -> None:
    assert parse_group_by("team,model") == ("team", "model")
    assert parse_group_by(" tag , day") == ("tag", "day")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Model", "key, team, user, customer, tag, model, provider, day"),
        ("team,team", "given twice"),
        ("team,model,day", "at most 2"),
        ("team,", "'' is not a valid"),
    ],
)
def test_group_by_rejects_other_names_and_names_the_param(text: str, says: str) -> None:
    assert GROUP_BY == ("key", "team", "user", "customer", "tag", "model", "provider", "day")
    with pytest.raises(InvalidRequest) as caught:
        parse_group_by(text, param="by")
    assert caught.value.param == "by" and says in caught.value.message


@pytest.mark.parametrize(
    ("status", "refusal", "delivered", "outcome"),
    [
        (200, None, True, "answered"),
        (200, None, False, "answered"),
        (429, "budget", False, "refused_budget"),
        (403, "budget", False, "refused_budget"),
        (429, "rate_limit", False, "refused_rate"),
        (401, "auth", False, "refused_auth"),
        (502, None, False, "failed"),
        (429, None, False, "failed"),  # an upstream's 429, after retries
        (499, None, True, "answered"),  # the client left after part of a stream
        (499, None, False, "failed"),
    ],
)
def test_outcomes_tell_answered_refused_and_failed_apart(
    status: int, refusal: str | None, delivered: bool, outcome: str
) -> None:
    assert outcome_of(status, refusal, delivered) == outcome


def test_report_windows_are_whole_utc_days() -> None:
    assert day_span(None, None) == (None, None)
    start, end = day_span(NOW, NOW + timedelta(hours=1))
    assert (start, end) == (datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    midnight = datetime(2026, 3, 10, tzinfo=UTC)
    assert day_span(None, midnight) == (None, midnight)  # a day boundary stays where it is
    plus_3 = timezone(timedelta(hours=3))
    assert day_span(datetime(2026, 3, 8, 1, tzinfo=plus_3), None)[0] == datetime(2026, 3, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        (" 30m ", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("0d", NOW),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00+02:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("2026-03-01T10:00:00 02:00", datetime(2026, 3, 1, 8, tzinfo=UTC)),  # '+' lost in a query string
        ("2026-03-01T10:00:00.250-01:30", datetime(2026, 3, 1, 11, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_times_are_iso_or_spans_back_from_now(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == expected and parsed.tzinfo is UTC


def test_spans_count_back_from_the_present_by_default() -> None:
    before = datetime.now(UTC)
    parsed = parse_time("1h")
    assert before - timedelta(hours=1) <= parsed <= datetime.now(UTC) - timedelta(hours=1)
    assert parse_time("1d", NOW.astimezone(timezone(timedelta(hours=3)))) == NOW - timedelta(days=1)


@pytest.mark.parametrize("text", ["", "yesterday", "7", "d7", "7y", "-7d", "2026-13-01", "99999999999d"])
def test_other_times_are_invalid_requests_naming_the_param(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_time(text, NOW, param="until")
    assert caught.value.param == "until" and "ISO 8601" in caught.value.message


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00 14:00"]
)
def test_a_time_with_no_utc_counterpart_is_refused_not_overflowed(text: str) -> None:
    with pytest.raises(InvalidRequest, match="until"):
        parse_time(text, NOW, param="until")
