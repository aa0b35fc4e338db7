"""The models page: every routable model, its deployments and prices, from `GET /admin/models`."""

from __future__ import annotations

from starlette.responses import Response

from calcifer.console.web import Visit


async def models_page(visit: Visit) -> Response:
    listing = await visit.api.get("/admin/models")
    models = listing["data"]
    shown = visit.request.query_params.get("show", "")
    if shown == "unpriced":
        models = [m for m in models if not m["priced"]]
    elif shown == "cooling":
        models = [m for m in models if any(d["cooling_down"] for d in m["deployments"])]
    cooling = [(m["id"], d) for m in listing["data"] for d in m["deployments"] if d["cooling_down"]]
    return visit.page(
        "models.html",
        models=models,
        catalogue=listing["catalogue"],
        unpriced=sum(1 for m in listing["data"] if not m["priced"]),
        total=len(listing["data"]),
        cooling=cooling,
        shown=shown,
    )
