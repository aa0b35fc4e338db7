"""Teams, users and customers (`/admin/teams|users|customers`), each with its spend this budget period
against its budget and its spend by day over 30 days; and the admin audit log (`/admin/audit`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.responses import Response

from calcifer.console.api import ApiError
from calcifer.console.overview import chart_days
from calcifer.console.web import Visit

KINDS = {"teams": ("team", "Teams"), "users": ("user", "Users"), "customers": ("customer", "Customers")}
ENTITIES = ("key", "team", "user", "member", "customer", "tag")
PERIODS = ("total", "daily", "weekly", "monthly")


def _kind(visit: Visit) -> str:
    return visit.request.url.path.split("/")[2]


async def level_list(visit: Visit, status: int = 200, error: str | None = None) -> Response:
    plural = _kind(visit)
    listing = await visit.api.get(f"/admin/{plural}")
    return visit.page(
        "levels.html",
        status,
        plural=plural,
        kind=KINDS[plural][0],
        title=KINDS[plural][1],
        items=listing["data"],
        periods=PERIODS,
        error=error,
        form=visit.form,
    )


async def level_page(visit: Visit, status: int = 200, error: str | None = None) -> Response:
    plural = _kind(visit)
    kind = KINDS[plural][0]
    item_id = visit.request.path_params["item_id"]
    try:
        item = await visit.api.get(f"/admin/{plural}/{item_id}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    now = datetime.fromtimestamp(float(visit.request.app.state.clock.now()), UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    filters = {"key_id" if kind == "key" else kind: item_id, "since": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    days = await visit.api.get("/v1/spend", {"group_by": "day", **filters})
    models = await visit.api.get("/v1/spend", {"group_by": "model", **filters})
    return visit.page(
        "level.html",
        status,
        plural=plural,
        kind=kind,
        item=item,
        days=days["data"],
        models=models["data"],
        chart=chart_days(days["data"], start, now),
        periods=PERIODS,
        error=error,
        saved=visit.request.query_params.get("saved") == "1",
    )


async def audit_page(visit: Visit) -> Response:
    asked = visit.request.query_params
    chosen = {name: asked.get(name) or "" for name in ("entity", "entity_id")}
    params = {
        **{k: v or None for k, v in chosen.items()},
        "limit": "100",
        "before": asked.get("before") or None,
    }
    try:
        entries = (await visit.api.get("/admin/audit", params))["data"]
        error, status = None, 200
    except ApiError as refused:
        entries, error, status = [], refused.message, refused.status
    older = None
    if len(entries) == 100:
        older = "/ui/audit?" + urlencode({**chosen, "before": entries[-1]["id"]})
    return visit.page(
        "audit.html",
        status,
        entries=entries,
        chosen=chosen,
        entities=ENTITIES,
        error=error,
        older=older,
    )
