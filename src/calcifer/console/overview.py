"""The overview: spend today, this week and this month, the daily spend, the top spenders and budgets.

Every number comes from `GET /v1/spend` and `GET /admin/keys`, as a script would read them.
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


def chart_days(days: list[dict[str, Any]], start: datetime, now: datetime) -> dict[str, list[str]]:
    """Chart data: one label per day from `start` to today (days without spend at 0), costs as text."""
    by_day = {row["group"]: row["cost"] for row in days}
    labels: list[str] = []
    costs: list[str] = []
    day = start
    while day <= now:
        label = day.strftime("%Y-%m-%d")
        labels.append(label)
        cost = by_day.get(label)
        costs.append(format(cost if cost is not None else Decimal(0), "f"))
        day += timedelta(days=1)
    return {"labels": labels, "costs": costs}


async def overview(visit: Visit) -> Response:
    api = visit.api
    now = datetime.fromtimestamp(float(visit.request.app.state.clock.now()), UTC)
    starts = periods(now)
    totals = {
        name: (await api.get("/v1/spend", {"group_by": "model", "since": _iso(start)}))["total"]
        for name, start in starts.items()
    }
    chart_start = starts["today"] - timedelta(days=29)
    days = await api.get("/v1/spend", {"group_by": "day", "since": _iso(chart_start)})
    keys = (await api.get("/admin/keys"))["data"] if visit.request.app.state.authenticator.enabled else []
    names = {key["id"]: key["name"] for key in keys}
    tops = []
    for dimension, title in _DIMENSIONS:
        report = await api.get("/v1/spend", {"group_by": dimension, "since": _iso(starts["month"])})
        tops.append((dimension, title, report["data"][:TOP]))
    budgets = [key for key in keys if key["max_budget"] is not None and not key["revoked"]]
    return visit.page(
        "overview.html",
        totals=totals,
        chart=chart_days(days["data"], chart_start, now),
        days=days["data"],
        tops=tops,
        names=names,
        budgets=budgets,
    )
