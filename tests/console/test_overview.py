"""The overview's periods and chart data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calcifer.console.overview import chart_days, period_total, periods, stacked_days
from calcifer.console.render import Renderer

NOW = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)  # a Thursday
START = datetime(2026, 12, 1, tzinfo=UTC)


def test_periods_start_at_utc_midnight_monday_and_the_first() -> None:
    assert periods(NOW) == {
        "today": datetime(2026, 12, 3, tzinfo=UTC),
        "week": datetime(2026, 11, 30, tzinfo=UTC),
        "month": datetime(2026, 12, 1, tzinfo=UTC),
    }


def test_daily_chart_has_every_day_with_exact_costs() -> None:
    days: list[dict[str, Any]] = [
        {"group": "2026-12-02", "cost": Decimal("0.000125")},
        {"group": "2026-12-03", "cost": None},
    ]
    assert chart_days(days, START, NOW) == {
        "labels": ["2026-12-01", "2026-12-02", "2026-12-03"],
        "costs": ["0", "0.000125", "0"],
    }


def _day(day: str, requests: int, cost: str | None, saved: str = "0") -> dict[str, Any]:
    return {
        "group": day,
        "requests": requests,
        "refused": {"budget": 1, "rate_limit": 0, "auth": 2},
        "failed": 1,
        "prompt_tokens": 10 * requests,
        "completion_tokens": 5 * requests,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": requests,
        "cost": None if cost is None else Decimal(cost),
        "cost_saved": Decimal(saved),
        "unpriced_requests": 1 if cost is None else 0,
    }


def test_a_periods_total_sums_its_days_exactly() -> None:
    days = [
        _day("2026-11-29", 7, "5"),
        _day("2026-11-30", 2, "0.1", saved="0.000000000001"),
        _day("2026-12-01", 3, None),
        _day("2026-12-03", 1, "0.2"),
    ]
    week = period_total(days, datetime(2026, 11, 30, tzinfo=UTC))
    assert week["cost"] == Decimal("0.3") and week["cost_saved"] == Decimal("0.000000000001")
    assert (week["requests"], week["failed"], week["unpriced_requests"], week["reasoning_tokens"]) == (
        6,
        3,
        1,
        6,
    )
    assert week["refused"] == {"budget": 3, "rate_limit": 0, "auth": 6}
    assert period_total(days, datetime(2026, 12, 3, tzinfo=UTC))["requests"] == 1
    unpriced = period_total(days[2:3], datetime(2026, 12, 1, tzinfo=UTC))
    assert (unpriced["cost"], unpriced["unpriced_requests"]) == (None, 1)  # unpriced is null, never $0
    assert period_total(days, datetime(2026, 12, 4, tzinfo=UTC))["cost"] is None


def test_stacked_chart_keeps_the_top_values_and_folds_the_rest() -> None:
    rows: list[dict[str, Any]] = [
        {"group": ["2026-12-01", "gpt-4o"], "cost": Decimal("3")},
        {"group": ["2026-12-02", "gpt-4o"], "cost": Decimal("1")},
        {"group": ["2026-12-02", "claude"], "cost": Decimal("2")},
        {"group": ["2026-12-03", "echo4"], "cost": Decimal("0.5")},
        {"group": ["2026-12-03", "llama"], "cost": None},
    ]
    chart = stacked_days(rows, START, NOW, top=2)
    assert chart["labels"] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert [(d["label"], d["data"]) for d in chart["datasets"]] == [
        ("gpt-4o", [Decimal(3), Decimal(1), Decimal(0)]),
        ("claude", [Decimal(0), Decimal(2), Decimal(0)]),
        ("other", [Decimal(0), Decimal(0), Decimal("0.5")]),
    ]
    assert all(isinstance(cost, Decimal) for d in chart["datasets"] for cost in d["data"])
    assert stacked_days(rows[:1], START, NOW)["datasets"][0]["label"] == "gpt-4o"


def test_tojson_writes_decimals_digit_for_digit_and_escapes_for_html() -> None:
    template = Renderer().env.from_string("{{ chart | tojson }}")
    text = template.render(chart={"label": "</script>", "data": [Decimal("0.10000000000000000000001")]})
    assert text == '{"label":"\\u003c/script\\u003e","data":[0.10000000000000000000001]}'
