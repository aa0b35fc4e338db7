"""The requests pages: the per-request log with its filters (`GET /admin/requests`), and one request."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from calcifer.console.api import ApiError
from calcifer.console.web import Visit

FILTERS = (
    "key_id",
    "team",
    "user",
    "customer",
    "model",
    "provider",
    "status",
    "outcome",
    "streamed",
    "cut_short",
    "cache_hit",
    "since",
    "until",
)


async def key_names(visit: Visit) -> dict[str, str]:
    keys = await visit.api.get("/admin/keys", {"include_revoked": "true"})
    return {key["id"]: key["name"] for key in keys["data"]}


async def requests_page(visit: Visit) -> Response:
    asked = visit.request.query_params
    chosen = {name: asked[name] for name in FILTERS if asked.get(name)}
    params = {**chosen, "limit": "50", "before": asked.get("before") or None}
    try:
        listing = await visit.api.get("/admin/requests", params)
        error, status = None, 200
    except ApiError as refused:
        listing = {"data": [], "has_more": False, "next_before": None}
        error, status = refused.message, refused.status
    older = None
    if listing["next_before"] is not None:
        older = "/ui/requests?" + urlencode({**chosen, "before": listing["next_before"]})
    return visit.page(
        "requests.html",
        status=status,
        rows=listing["data"],
        chosen=chosen,
        error=error,
        older=older,
        newest="/ui/requests?" + urlencode(chosen) if asked.get("before") else None,
        names=await key_names(visit),
    )


async def request_page(visit: Visit) -> Response:
    request_id = visit.request.path_params["request_id"]
    try:
        row = await visit.api.get(f"/admin/requests/{request_id}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    return visit.page("request.html", row=row, names=await key_names(visit))
