"""The forms of the teams, users and customers pages: create, edit and delete one, and add, change or
remove a team's members. Each change is the admin API's (`/admin/teams|users|customers`, and
`/admin/teams/{id}/members/{user_id}`), called as the signed-in identity, so it is validated and
audited exactly as a script's (the audit log names the session's key)."""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from calcifer.console.api import ApiError
from calcifer.console.keys import limit_value
from calcifer.console.levels import KINDS, level_list, level_page
from calcifer.console.web import Visit

_FIELDS = {
    "team": ("name", "max_budget", "budget_period", "models", "rpm_limit", "tpm_limit", "metadata"),
    "user": ("name", "email", "max_budget", "budget_period", "metadata"),
    "customer": ("max_budget", "budget_period", "blocked", "metadata"),
}


def level_body(kind: str, form: dict[str, str], *, creating: bool) -> dict[str, object]:
    """The admin API's body from a level form: empty fields are none, limits as `limit_value`, the
    metadata a JSON object (text that is not one goes as it is, for the API to refuse)."""
    body: dict[str, object] = {}
    if creating and form.get("id", "").strip():
        body["id"] = form["id"].strip()
    for name in _FIELDS[kind]:
        text = form.get(name, "").strip()
        if name in ("rpm_limit", "tpm_limit"):
            body[name] = limit_value(text)
        elif name == "models":
            body[name] = [m.strip() for m in text.replace("\n", ",").split(",") if m.strip()]
        elif name == "blocked":
            body[name] = form.get("blocked") == "on"
        elif name == "metadata":
            body[name] = _metadata(text)
        elif name == "budget_period":
            body[name] = text or "monthly"
        elif name != "name" or kind != "team" or text:  # a team's name is required: left out, refused
            body[name] = text or None
    return body


def _metadata(text: str) -> object:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def _path(visit: Visit) -> tuple[str, str]:
    plural = visit.request.url.path.split("/")[2]
    return plural, KINDS[plural][0]


async def save_level(visit: Visit) -> Response:
    """Create one (POST to the list's path) or change one (POST to its page's path)."""
    plural, kind = _path(visit)
    item_id = visit.request.path_params.get("item_id")
    body = level_body(kind, visit.form, creating=item_id is None)
    try:
        if item_id is None:
            saved = await visit.api.post(f"/admin/{plural}", body)
        else:
            saved = await visit.api.patch(f"/admin/{plural}/{item_id}", body)
    except ApiError as refused:
        again = level_list if item_id is None else level_page
        return await again(visit, refused.status, refused.message)
    return RedirectResponse(f"/ui/{plural}/{quote(saved['id'], safe='')}?saved=1", status_code=303)


async def delete_level(visit: Visit) -> Response:
    plural, _ = _path(visit)
    item_id = visit.request.path_params["item_id"]
    try:
        await visit.api.delete(f"/admin/{plural}/{item_id}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    return RedirectResponse(f"/ui/{plural}", status_code=303)


async def put_member(visit: Visit) -> Response:
    """Add a user to a team, or change their budget in it (from the team's page or the user's)."""
    form, item_id = visit.form, visit.request.path_params["item_id"]
    if _path(visit)[0] == "users":
        team_id, user_id = form.get("team_id", "").strip(), item_id
    else:
        team_id, user_id = item_id, form.get("user_id", "").strip()
    body = {
        "max_budget": form.get("max_budget", "").strip() or None,
        "budget_period": form.get("budget_period") or "monthly",
    }
    try:
        await visit.api.put(f"/admin/teams/{quote(team_id, safe='')}/members/{quote(user_id, safe='')}", body)
    except ApiError as refused:
        return await level_page(visit, refused.status, refused.message)
    return RedirectResponse(_back(visit, team_id, user_id), status_code=303)


async def remove_member(visit: Visit) -> Response:
    team_id, user_id = visit.request.path_params["item_id"], visit.request.path_params["user_id"]
    try:
        await visit.api.delete(f"/admin/teams/{quote(team_id, safe='')}/members/{quote(user_id, safe='')}")
    except ApiError as refused:
        return visit.page("refused.html", refused.status, message=refused.message)
    return RedirectResponse(_back(visit, team_id, user_id), status_code=303)


def _back(visit: Visit, team_id: str, user_id: str) -> str:
    """Back to the page the member form was on: the user's or the team's."""
    if _path(visit)[0] == "users":
        return f"/ui/users/{quote(user_id, safe='')}?saved=1"
    return f"/ui/teams/{quote(team_id, safe='')}?saved=1"
