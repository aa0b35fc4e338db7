"""The overview: spend today, this week and this month, the daily spend, the top spenders and budgets.

Every number comes from `GET /v1/spend` and `GET /admin/keys`, as a script would read them, with nine
spend reports: the month's by each of seven dimensions (the month's total is the one by model), the
last 30 days by day (today's and this week's totals are sums of its days) and by day and model or
provider (the chart).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from calcifer.console.web import Visit

TOP = 5
_DIMENSIONS = (
    ("key", "Keys"),
    ("model", "Models"),
    ("provider", "Providers"),
    ("team", "Teams"),
    ("user", "Users"),
    ("customer", "Customers"),
    ("tag", "Tags"),
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def periods(now: datetime) -> dict[str, datetime]:
    """The starts of today, this week (Monday) and this month, UTC."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
    }


def _labels(start: datetime, now: datetime) -> list[str]:
    labels = []
    day = start
    while day <= now:
        labels.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return labels


def _text(cost: Decimal | None) -> str:
    return format(cost if cost is not None else Decimal(0), "f")


def chart_days(days: list[dict[str, Any]], start: datetime, now: datetime) -> dict[str, Any]:
    """Chart data: one label per day from `start` to today (days without spend at 0), costs as text."""
    by_day = {row["group"]: row["cost"] for row in days}
    labels = _labels(start, now)
    return {"labels": labels, "costs": [_text(by_day.get(label)) for label in labels]}


async def spend_history(visit: Visit, filters: dict[str, str]) -> dict[str, Any]:
    """The last 30 days' spend that `filters` select (a key, team, user or customer), as a page shows it:
    `days` and `models` (the spend reports by day and by model) and the day `chart`."""
    now = datetime.fromtimestamp(float(visit.request.app.state.clock.now()), UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    days = await visit.api.get("/v1/spend", {"group_by": "day", **filters, "since": since})
    models = await visit.api.get("/v1/spend", {"group_by": "model", **filters, "since": since})
    return {"days": days["data"], "models": models["data"], "chart": chart_days(days["data"], start, now)}


def stacked_days(rows: list[dict[str, Any]], start: datetime, now: datetime, top: int = 8) -> dict[str, Any]:
    """Chart data stacked by a second dimension (`[day, value]` groups): the `top` values by cost,
    the rest as "other"; costs stay exact decimals (the page writes them as JSON numbers digit for digit)."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        name = str(row["group"][1])
        totals[name] = totals.get(name, Decimal(0)) + (row["cost"] or Decimal(0))
    ranked = sorted(totals, key=lambda name: -totals[name])
    kept = set(ranked[:top])
    labels = _labels(start, now)
    series: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        day, name = str(row["group"][0]), str(row["group"][1])
        name = name if name in kept else "other"
        cell = series.setdefault(name, {})
        cell[day] = cell.get(day, Decimal(0)) + (row["cost"] or Decimal(0))
    order = [n for n in ranked if n in kept] + (["other"] if "other" in series else [])
    datasets = [
        {
            "label": name,
            "data": [series[name].get(day, Decimal(0)) for day in labels],
            "backgroundColor": _COLOURS[i % len(_COLOURS)],
        }
        for i, name in enumerate(order)
    ]
    return {"labels": labels, "datasets": datasets}


def period_total(days: list[dict[str, Any]], start: datetime) -> dict[str, Any]:
    """The total of a report by day from `start` on, as the report's own `total` would be: counts
    summed, costs summed exactly, the cost null when no day had a priced request."""
    rows = [row for row in days if row["group"] >= start.strftime("%Y-%m-%d")]
    total: dict[str, Any] = {name: sum(row[name] for row in rows) for name in _COUNTS}
    total["refused"] = {name: sum(row["refused"][name] for row in rows) for name in _REFUSED}
    priced = [row["cost"] for row in rows if row["cost"] is not None]
    total["cost"] = sum(priced, Decimal(0)) if priced else None
    total["cost_saved"] = sum((row["cost_saved"] for row in rows), Decimal(0))
    return total


_COUNTS = (
    "requests",
    "failed",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "unpriced_requests",
)
_REFUSED = ("budget", "rate_limit", "auth")
_COLOURS = ("#9a3412", "#1d4ed8", "#15803d", "#a16207", "#7e22ce", "#be123c", "#0e7490", "#4d7c0f", "#57534e")


async def overview(visit: Visit) -> Response:
    api = visit.api
    now = datetime.fromtimestamp(float(visit.request.app.state.clock.now()), UTC)
    starts = periods(now)
    month = _iso(starts["month"])
    reports = {
        name: await api.get("/v1/spend", {"group_by": name, "since": month}) for name, _ in _DIMENSIONS
    }
    chart_start = starts["today"] - timedelta(days=29)
    since = _iso(chart_start)
    days = await api.get("/v1/spend", {"group_by": "day", "since": since})
    totals = {  # the month's report has the month's total; today and this week are in the 30 days'
        "today": period_total(days["data"], starts["today"]),
        "week": period_total(days["data"], starts["week"]),
        "month": reports["model"]["total"],
    }
    stack = visit.request.query_params.get("stack", "model")
    stack = stack if stack in ("model", "provider") else "model"
    stacked = await api.get("/v1/spend", {"group_by": f"day,{stack}", "since": since})
    chart = stacked_days(stacked["data"], chart_start, now)
    keys = (await api.get("/admin/keys"))["data"] if visit.request.app.state.authenticator.enabled else []
    names = {key["id"]: key["name"] for key in keys}
    tops = [(dimension, title, reports[dimension]["data"][:TOP]) for dimension, title in _DIMENSIONS]
    budgets = [key for key in keys if key["max_budget"] is not None and not key["revoked"]]
    return visit.page(
        "overview.html",
        totals=totals,
        chart=chart,
        stack=stack,
        days=days["data"],
        tops=tops,
        names=names,
        budgets=budgets,
    )
