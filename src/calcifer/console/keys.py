"""The keys pages: list and create (the secret shown once), one key's page (its spend over time, its
settings to edit), revoke. Each change is the admin API's (`/admin/keys`), as the signed-in identity."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from calcifer.console.api import ApiError
from calcifer.console.overview import spend_history
from calcifer.console.web import Visit

PERIODS = ("total", "daily", "monthly")


def key_body(form: dict[str, str], metadata: dict[str, Any]) -> dict[str, object]:
    """The admin API's body from the key form: empty fields are "none", limits as `limit_value`; the
    form's team is the key's `team_id` (the team whose budget and reports it counts in); left empty, it
    is not sent (a new key has no team unless the caller is a team-admin, whose team the API sets; an
    edited key keeps its team)."""
    models = [m.strip() for m in form.get("models", "").replace("\n", ",").split(",") if m.strip()]
    meta = {k: v for k, v in metadata.items() if k != "team"}
    body: dict[str, object] = {
        "name": form.get("name", ""),
        "max_budget": form.get("max_budget", "").strip() or None,
        "budget_period": form.get("budget_period", "total"),
        "models": models,
        "metadata": meta,
    }
    for limit in ("rpm_limit", "tpm_limit"):
        body[limit] = limit_value(form.get(limit, ""))
    team = form.get("team", "").strip()
    if team:
        body["team_id"] = team
    return body


def limit_value(text: str) -> object:
    """A form's limit field for the admin API: ASCII digits as a number, empty as none, anything else
    as the text (the API refuses it; `"²".isdigit()` is true but `int` fails)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else (text or None)


async def keys_page(visit: Visit, status: int = 200, error: str | None = None) -> Response:
    show_revoked = visit.request.query_params.get("revoked") == "1"
    listing = await visit.api.get("/admin/keys", {"include_revoked": "true" if show_revoked else None})
    return visit.page(
        "keys.html",
        status,
        keys=listing["data"],
        show_revoked=show_revoked,
        periods=PERIODS,
        error=error,
        form=visit.form,
    )


async def create_key(visit: Visit) -> Response:
    try:
        created = await visit.api.post("/admin/keys", key_body(visit.form, {}))
    except ApiError as refused:
        return await keys_page(visit, refused.status, refused.message)
    secret = created.pop("key")
    return visit.page("key_created.html", key=created, secret=secret)


async def key_page(visit: Visit, status: int = 200, error: str | None = None) -> Response:
    key_id = visit.request.path_params["key_id"]
    try:
        key = await visit.api.get(f"/admin/keys/{key_id}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    return visit.page(
        "key.html",
        status,
        key=key,
        **await spend_history(visit, {"key_id": key_id}),
        periods=PERIODS,
        error=error,
        saved=visit.request.query_params.get("saved") == "1",
    )


async def update_key(visit: Visit) -> Response:
    key_id = visit.request.path_params["key_id"]
    try:
        current = await visit.api.get(f"/admin/keys/{key_id}")
        await visit.api.patch(f"/admin/keys/{key_id}", key_body(visit.form, current["metadata"]))
    except ApiError as refused:
        return await key_page(visit, refused.status, refused.message)
    return RedirectResponse(f"/ui/keys/{key_id}?saved=1", status_code=303)


async def revoke_key(visit: Visit) -> Response:
    key_id = visit.request.path_params["key_id"]
    try:
        await visit.api.delete(f"/admin/keys/{key_id}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    return RedirectResponse("/ui/keys", status_code=303)
