"""The spend explorer: `GET /v1/spend` for any range and grouping, as a chart, a table and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.responses import Response

from calcifer.console.api import ApiError
from calcifer.console.web import Visit

GROUPINGS = ("model", "provider", "key", "team", "user", "customer", "tag", "day")
FILTERS = ("key_id", "team", "user", "customer", "tag")
_CHART_GROUPS = 30
_COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_requests")
_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cost", "unpriced_requests")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


async def _report(visit: Visit) -> tuple[dict[str, str], Any, ApiError | None]:
    asked = visit.request.query_params
    chosen = {
        "group_by": asked.get("group_by") or "model",
        "then_by": asked.get("then_by") or "",
        "since": asked.get("since") or "30d",
        "until": asked.get("until") or "",
        **{name: asked.get(name) or "" for name in FILTERS},
    }
    group_by = chosen["group_by"] + ("," + chosen["then_by"] if chosen["then_by"] else "")
    params = {name: value or None for name, value in chosen.items() if name != "then_by"}
    params["group_by"] = group_by
    try:
        return chosen, await visit.api.get("/v1/spend", params), None
    except ApiError as refused:
        return chosen, None, refused


def _label(group: object, names: dict[str, str]) -> str:
    values = group if isinstance(group, list) else [group]
    return " / ".join("(none)" if v is None else names.get(str(v), str(v)) for v in values)


async def spend_page(visit: Visit) -> Response:
    chosen, report, error = await _report(visit)
    rows = report["data"] if report else []
    names = {}
    if "key" in (chosen["group_by"], chosen["then_by"]):
        keys = await visit.api.get("/admin/keys", {"include_revoked": "true"})
        names = {key["id"]: key["name"] for key in keys["data"]}
    shown = rows[:_CHART_GROUPS]
    chart = {
        "labels": [_label(r["group"], names) for r in shown],
        "costs": [format(r["cost"], "f") if r["cost"] is not None else "0" for r in shown],
    }
    return visit.page(
        "spend.html",
        error.status if error else 200,
        chosen=chosen,
        groupings=GROUPINGS,
        filters=FILTERS,
        rows=rows,
        total=report["total"] if report else None,
        names=names,
        chart=chart,
        error=error.message if error else None,
        query=visit.request.url.query,
    )


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else format(value, "f") if not isinstance(value, str | int) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


async def spend_csv(visit: Visit) -> Response:
    chosen, report, error = await _report(visit)
    if error is not None:
        return visit.page("refused.html", error.status, message=error.message)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    dimensions = [chosen["group_by"], *([chosen["then_by"]] if chosen["then_by"] else [])]
    writer.writerow([*dimensions, *_COLUMNS])
    for row in report["data"]:
        group = row["group"] if isinstance(row["group"], list) else [row["group"]]
        writer.writerow(_cell(v) for v in (*group, *(row[name] for name in _FIELDS)))
    filename = f"calcifer-spend-by-{'-'.join(dimensions)}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
    )
