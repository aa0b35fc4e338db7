"""The overview's periods and chart data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calcifer.console.overview import chart_days, periods, stacked_days
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
