"""The admin API for teams (and their members), users and customers, and the audit log.

`/admin/teams`, `/admin/users`, `/admin/customers`: POST creates (201), GET lists or reads one, PATCH
changes the fields given, DELETE deletes (the spend they made stays in every report). A team's members
are under `/admin/teams/{id}/members/{user_id}` (PUT adds or changes one, with an optional budget
inside the team; DELETE removes). Every change is appended to the audit log, `GET /admin/audit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.checks import check_id
from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.levels import Member
from calcifer.domain.limits import BudgetPeriod, budget_window
from calcifer.http import admin_changes
from calcifer.http.admin_changes import Kind, member_view
from calcifer.http.asgi import Route
from calcifer.http.auth import IDENTITY_KEY, Identity, caller_team
from calcifer.http.exchange import read_json
from calcifer.http.wire import money

_FIELDS: dict[Kind, tuple[str, ...]] = {
    "team": ("id", "name", "max_budget", "budget_period", "models", "rpm_limit", "tpm_limit", "metadata"),
    "user": ("id", "name", "email", "max_budget", "budget_period", "metadata"),
    "customer": ("id", "max_budget", "budget_period", "blocked", "metadata"),
}
_KINDS: dict[str, Kind] = {"teams": "team", "users": "user", "customers": "customer"}


class NotFound(GatewayError):
    kind = "invalid_request_error"
    code = "not_found"
    http_status = 404


class Conflict(GatewayError):
    kind = "invalid_request_error"
    code = "already_exists"
    http_status = 409


class DirectoryMissing(GatewayError):
    kind = "server_error"
    code = "directory_not_configured"
    http_status = 503


def directory_of(request: Request) -> Any:
    directory = getattr(request.app.state, "directory", None)
    if directory is None:
        raise DirectoryMissing("Teams, users and customers need the gateway's database.")
    return directory


def actor(request: Request) -> str:
    """Who made an admin change: the master key, or which admin key."""
    identity: Identity | None = request.scope.get(IDENTITY_KEY)
    key = identity.key if identity is not None else None
    return "master" if key is None else f"key:{key.id}"


def audit_log(request: Request) -> Any:
    """The audit log admin changes are appended to (None without the gateway's database)."""
    return getattr(request.app.state, "audit", None)


def common_fields(body: Mapping[str, object]) -> dict[str, Any]:
    """The fields keys, teams, users and customers share, parsed: `max_budget` as a `Decimal`,
    `models` as a tuple, a null `metadata` as empty."""
    values: dict[str, Any] = dict(body)
    if values.get("max_budget") is not None:
        raw = values["max_budget"]
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise InvalidRequest("'max_budget' must be a number of USD, or null.", param="max_budget")
        try:
            values["max_budget"] = Decimal(str(raw))
        except InvalidOperation:
            raise InvalidRequest(
                "'max_budget' must be a number of USD, or null.", param="max_budget"
            ) from None
    if "models" in values:
        if not isinstance(values["models"], list):
            raise InvalidRequest("'models' must be a list of model names.", param="models")
        values["models"] = tuple(values["models"])
    if "metadata" in values and values["metadata"] is None:
        values["metadata"] = {}
    return values


def _values(kind: Kind, body: dict[str, object], *, creating: bool) -> dict[str, Any]:
    allowed = _FIELDS[kind] if creating else tuple(f for f in _FIELDS[kind] if f != "id")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(unknown)}.", param=unknown[0])
    values = common_fields(body)
    if kind == "team" and creating and "name" not in values:
        raise InvalidRequest("Missing required parameter: 'name'.", param="name")
    if kind == "customer" and creating and "id" not in values:
        raise InvalidRequest("Missing required parameter: 'id' (the customer's id).", param="id")
    return values


def level_view(kind: Kind, item: Any) -> dict[str, object]:
    """A team, user or customer as JSON (money as exact numbers), without its live spend."""
    view: dict[str, object] = {"object": kind, **asdict(item)}
    view["max_budget"] = money(item.max_budget)
    view["created_at"] = item.created_at.isoformat().replace("+00:00", "Z")
    if "models" in view:
        view["models"] = list(item.models)
    return view


async def live_spend(request: Request, budget_key: str, period: BudgetPeriod) -> dict[str, object]:
    """What a level's budget counter holds in its current window (nothing without spend control)."""
    spend = getattr(request.app.state, "spend", None)
    if spend is None:
        return {}
    window = budget_window(period, request.app.state.clock.now())
    return {"spend": money(await spend.limiter.spent(budget_key, window)), "budget_window": window}


async def _view(request: Request, kind: Kind, item: Any) -> dict[str, object]:
    return level_view(kind, item) | await live_spend(request, f"{kind}:{item.id}", item.budget_period)


def json_answer(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _kind(request: Request) -> Kind:
    return _KINDS[request.url.path.split("/")[2]]


def _viewer(request: Request, kind: Kind) -> admin_changes.View:
    async def view(item: Any) -> dict[str, object]:
        return await _view(request, kind, item)

    return view


async def create(request: Request) -> Response:
    kind = _kind(request)
    directory = directory_of(request)
    body, _ = await read_json(request)
    item = admin_changes.new_level(kind, _values(kind, body, creating=True))
    view = await admin_changes.create_level(
        directory, audit_log(request), actor(request), kind, item, _viewer(request, kind)
    )
    if view is None:
        raise Conflict(f"A {kind} with id '{item.id}' exists already.", param="id")
    return json_answer(view, 201)


async def list_all(request: Request) -> Response:
    kind = _kind(request)
    items = await directory_of(request).all(kind)
    team = caller_team(request)
    if team is not None:  # a team-admin key lists its own team only
        items = [item for item in items if item.id == team]
    return json_answer({"object": "list", "data": [await _view(request, kind, item) for item in items]})


async def _one(request: Request, kind: Kind) -> Any:
    item_id = request.path_params["item_id"]
    item = await directory_of(request).get(kind, item_id)
    if item is None:
        raise NotFound(f"No {kind} with id '{item_id}'.")
    return item


async def get_one(request: Request) -> Response:
    kind = _kind(request)
    item = await _one(request, kind)
    view = await _view(request, kind, item)
    if kind == "team":
        view["members"] = [member_view(m) for m in await directory_of(request).members(item.id)]
    return json_answer(view)


async def patch(request: Request) -> Response:
    kind = _kind(request)
    item = await _one(request, kind)
    body, _ = await read_json(request)
    values = _values(kind, body, creating=False)
    after = await admin_changes.update_level(
        directory_of(request), audit_log(request), actor(request), kind, item, values, _viewer(request, kind)
    )
    return json_answer(after)


async def remove(request: Request) -> Response:
    kind = _kind(request)
    item = await _one(request, kind)
    await admin_changes.delete_level(
        directory_of(request), audit_log(request), actor(request), kind, item, _viewer(request, kind)
    )
    return json_answer({"id": item.id, "object": kind, "deleted": True})


async def put_member(request: Request) -> Response:
    team = await _one(request, "team")
    user_id = request.path_params["user_id"]
    check_id(user_id, "user_id")
    directory = directory_of(request)
    if await directory.get("user", user_id) is None:
        raise NotFound(f"No user with id '{user_id}'.")
    body, _ = await read_json(request)
    unknown = sorted(set(body) - {"max_budget", "budget_period"})
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(unknown)}.", param=unknown[0])
    member = Member(team.id, user_id, **_values("user", body, creating=False))
    created = await admin_changes.put_member(directory, audit_log(request), actor(request), member)
    return json_answer(member_view(member), 201 if created else 200)


async def delete_member(request: Request) -> Response:
    team = await _one(request, "team")
    user_id = request.path_params["user_id"]
    removed = await admin_changes.remove_member(
        directory_of(request), audit_log(request), actor(request), team.id, user_id
    )
    if not removed:
        raise NotFound(f"'{user_id}' is not a member of team '{team.id}'.")
    return json_answer({"team_id": team.id, "user_id": user_id, "deleted": True})


async def list_audit(request: Request) -> Response:
    log = audit_log(request)
    if log is None:
        raise DirectoryMissing("The audit log needs the gateway's database.")
    params = request.query_params
    try:
        limit = int(params.get("limit", "100"))
        before = int(params["before"]) if "before" in params else None
    except ValueError:
        raise InvalidRequest("'limit' and 'before' must be integers.", param="limit") from None
    if not 1 <= limit <= 1000:
        raise InvalidRequest("'limit' must be between 1 and 1000.", param="limit")
    entries = await log.entries(
        entity=params.get("entity"), entity_id=params.get("entity_id"), limit=limit, before=before
    )
    return json_answer({"object": "list", "data": entries})


def level_routes() -> list[Route]:
    routes = [Route("/admin/audit", list_audit, methods=["GET"])]
    for plural in _KINDS:
        base = f"/admin/{plural}"
        routes += [
            Route(base, create, methods=["POST"]),
            Route(base, list_all, methods=["GET"]),
            Route(base + "/{item_id}", get_one, methods=["GET"]),
            Route(base + "/{item_id}", patch, methods=["PATCH"]),
            Route(base + "/{item_id}", remove, methods=["DELETE"]),
        ]
    routes += [
        Route("/admin/teams/{item_id}/members/{user_id}", put_member, methods=["PUT"]),
        Route("/admin/teams/{item_id}/members/{user_id}", delete_member, methods=["DELETE"]),
    ]
    return routes
