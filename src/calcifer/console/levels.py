"""Teams, users and customers (`/admin/teams|users|customers`), each with its spend this budget period
against its budget and its spend by day over 30 days; and the admin audit log (`/admin/audit`)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from calcifer.console.api import ApiError
from calcifer.console.overview import spend_history
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
    return visit.page(
        "level.html",
        status,
        plural=plural,
        kind=kind,
        item=item,
        **await spend_history(visit, {"key_id" if kind == "key" else kind: item_id}),
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
