"""The admin API for virtual keys (master key or an admin key): create, list, read, update, revoke;
every change is appended to the audit log. A team-admin key is confined to its team's keys
(`calcifer.domain.roles`): others' keys answer 404, keys with a role 403."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.keys import KeyChanges, KeyStore, VirtualKey, issue_key
from calcifer.domain.limits import budget_window
from calcifer.domain.roles import NotPermitted, check_key_changes, check_new_key, may_manage_key, may_see_key
from calcifer.http import admin_changes
from calcifer.http.admin_levels import actor, audit_log, common_fields
from calcifer.http.asgi import Route
from calcifer.http.auth import caller_team
from calcifer.http.exchange import read_json
from calcifer.http.wire import money

_FIELDS = (
    "name",
    "max_budget",
    "budget_period",
    "models",
    "rpm_limit",
    "tpm_limit",
    "metadata",
    "user_id",
    "team_id",
    "role",
)


class KeyNotFound(GatewayError):
    kind = "invalid_request_error"
    code = "key_not_found"
    http_status = 404


class KeysDisabled(GatewayError):
    kind = "invalid_request_error"
    code = "keys_disabled"
    http_status = 404


def _store(request: Request) -> KeyStore:
    store: KeyStore | None = getattr(request.app.state, "keys", None)
    if store is None or not request.app.state.authenticator.enabled:
        raise KeysDisabled("Virtual keys are off: set CALCIFER_MASTER_KEY to use the admin API.")
    return store


def _fields(body: Mapping[str, object], *, creating: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(unknown)}.", param=unknown[0])
    if creating and "name" not in body:
        raise InvalidRequest("Missing required parameter: 'name'.", param="name")
    return common_fields(body)


def key_view(key: VirtualKey) -> dict[str, object]:
    """A key as JSON (never its secret), without its live spend."""
    return {
        "id": key.id,
        "name": key.name,
        "max_budget": money(key.max_budget),
        "budget_period": key.budget_period,
        "models": list(key.models),
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "metadata": dict(key.metadata),
        "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
        "revoked": key.revoked,
        "user_id": key.user_id,
        "team_id": key.team_id,
        "role": key.role,
    }


async def _view(request: Request, key: VirtualKey) -> dict[str, object]:
    view = key_view(key)
    spend = getattr(request.app.state, "spend", None)
    if spend is not None:
        window = budget_window(key.budget_period, request.app.state.clock.now())
        view["spend"] = money(await spend.limiter.spent(key.id, window))
        view["budget_window"] = window
    return view


def _viewer(request: Request) -> admin_changes.View:
    async def view(key: Any) -> dict[str, object]:
        return await _view(request, key)

    return view


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def create_key(request: Request) -> Response:
    store = _store(request)
    body, _ = await read_json(request)
    fields = _fields(body, creating=True)
    fields.update(check_new_key(caller_team(request), fields))
    await _check_member(request, fields)
    key, secret = issue_key(**fields)
    view = await admin_changes.create_key(store, audit_log(request), actor(request), key, _viewer(request))
    return _json({**view, "key": secret}, 201)


async def list_keys(request: Request) -> Response:
    store = _store(request)
    include = request.query_params.get("include_revoked", "false").lower() in ("1", "true", "yes")
    team = caller_team(request)
    keys = [key for key in await store.list_keys(include_revoked=include) if may_see_key(team, key)]
    return _json({"object": "list", "data": [await _view(request, k) for k in keys]})


async def _visible(request: Request, store: KeyStore, *, changing: bool) -> VirtualKey:
    """The key the path names, if the caller may see it (and change it, when `changing`)."""
    team = caller_team(request)
    key = await store.get(request.path_params["key_id"])
    if key is None or not may_see_key(team, key):
        raise KeyNotFound(f"No key with id '{request.path_params['key_id']}'.")
    if changing and not may_manage_key(team, key):
        raise NotPermitted("A team-admin key cannot change a key that has a role.", param="key_id")
    return key


async def _check_member(request: Request, fields: Mapping[str, object]) -> None:
    """A team-admin key gives a key only a user who is a member of its team (a key spends against
    its user's budget, and its user's spend is what the key may read)."""
    team, user = caller_team(request), fields.get("user_id")
    if team is None or not isinstance(user, str):
        return
    directory = getattr(request.app.state, "directory", None)
    if directory is None or await directory.member(team, user) is None:
        raise NotPermitted(f"'{user}' is not a member of team '{team}'.", param="user_id")


async def get_key(request: Request) -> Response:
    return _json(await _view(request, await _visible(request, _store(request), changing=False)))


async def update_key(request: Request) -> Response:
    store = _store(request)
    before = await _visible(request, store, changing=True)
    body, _ = await read_json(request)
    fields = _fields(body, creating=False)
    check_key_changes(caller_team(request), fields)
    await _check_member(request, fields)
    forget = request.app.state.authenticator.forget
    changes = KeyChanges(**fields)
    changed = await admin_changes.update_key(
        store, audit_log(request), actor(request), before, changes, _viewer(request), forget
    )
    if changed is None:
        raise KeyNotFound(f"No key with id '{request.path_params['key_id']}'.")
    return _json(changed[1])


async def revoke_key(request: Request) -> Response:
    store = _store(request)
    before = await _visible(request, store, changing=True)
    forget = request.app.state.authenticator.forget
    if not await admin_changes.revoke_key(
        store, audit_log(request), actor(request), before, _viewer(request), forget
    ):
        raise KeyNotFound(f"No key with id '{request.path_params['key_id']}'.")
    return _json({"id": request.path_params["key_id"], "revoked": True})


def admin_routes() -> list[Route]:
    return [
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys/{key_id}", get_key, methods=["GET"]),
        Route("/admin/keys/{key_id}", update_key, methods=["PATCH"]),
        Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
