"""The spend explorer: `GET /v1/spend` for any range and grouping, as a chart, a table and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.responses import Response

from calcifer.console.api import ApiError
from calcifer.console.web import Visit

GROUPINGS = ("model", "provider", "key", "team", "user", "day")
_CHART_GROUPS = 30
_COLUMNS = ("group", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_requests")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


async def _report(visit: Visit) -> tuple[dict[str, str], Any, str | None]:
    asked = visit.request.query_params
    chosen = {
        "group_by": asked.get("group_by") or "model",
        "since": asked.get("since") or "30d",
        "until": asked.get("until") or "",
    }
    params = {name: value or None for name, value in chosen.items()}
    try:
        return chosen, await visit.api.get("/v1/spend", params), None
    except ApiError as refused:
        return chosen, None, refused.message


async def spend_page(visit: Visit) -> Response:
    chosen, report, error = await _report(visit)
    rows = report["data"] if report else []
    names = {}
    if chosen["group_by"] == "key":
        keys = await visit.api.get("/admin/keys", {"include_revoked": "true"})
        names = {key["id"]: key["name"] for key in keys["data"]}
    shown = rows[:_CHART_GROUPS]
    chart = {
        "labels": [names.get(r["group"], r["group"]) or "(none)" for r in shown],
        "costs": [format(r["cost"], "f") if r["cost"] is not None else "0" for r in shown],
    }
    return visit.page(
        "spend.html",
        400 if error else 200,
        chosen=chosen,
        groupings=GROUPINGS,
        rows=rows,
        total=report["total"] if report else None,
        names=names,
        chart=chart,
        error=error,
        query=visit.request.url.query,
    )


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else format(value, "f") if not isinstance(value, str | int) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


async def spend_csv(visit: Visit) -> Response:
    chosen, report, error = await _report(visit)
    if report is None:
        return visit.page("refused.html", 400, message=error)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            chosen["group_by"],
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "unpriced_requests",
        ]
    )
    for row in report["data"]:
        writer.writerow(
            _cell(v)
            for v in (
                row["group"],
                row["requests"],
                row["prompt_tokens"],
                row["completion_tokens"],
                row["cost"],
                row["unpriced_requests"],
            )
        )
    filename = f"calcifer-spend-by-{chosen['group_by']}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )
