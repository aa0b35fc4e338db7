"""`GET /v1/spend`: the spend ledger, grouped, as JSON with exact costs.

Query parameters: `group_by` = key | model | provider | user | team | day (default model), `since` and
`until` (ISO 8601, UTC when no zone is given, or a span back from now such as `7d`; since inclusive,
until exclusive), and `key_id` (master only: one key's spend).

Who sees what is decided by two ASGI scope values that the authentication middleware sets:
- `scope["calcifer.is_master"] = True`: the master key (or a gateway running without a master key,
  where everyone is master): every key's spend.
- `scope["calcifer.key_id"] = "<virtual key id>"`: a virtual key: only its own spend.
With neither, the answer is 401. The ledger is `app.state.ledger` (a `SpendLedger`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.ledger import SpendGroup, SpendLedger, parse_group_by, parse_time
from calcifer.http.errors import error_response

IS_MASTER = "calcifer.is_master"
KEY_ID = "calcifer.key_id"
_PARAMS = frozenset({"group_by", "since", "until", "key_id"})


class _Unauthenticated(GatewayError):
    kind = "invalid_request_error"
    code = "invalid_api_key"
    http_status = 401


class _Forbidden(GatewayError):
    kind = "permission_error"
    code = "forbidden"
    http_status = 403


class _NoLedger(GatewayError):
    kind = "server_error"
    code = "ledger_not_configured"
    http_status = 503


async def spend(request: Request) -> Response:
    ledger: SpendLedger | None = getattr(request.app.state, "ledger", None)
    try:
        key_id = _visible_key(request)
        params = request.query_params
        unknown = sorted(set(params) - _PARAMS)
        if unknown:
            raise InvalidRequest(f"Unknown query parameter '{unknown[0]}'.", param=unknown[0])
        group_by = parse_group_by(params.get("group_by", "model"))
        since = _time(params.get("since"), "since")
        until = _time(params.get("until"), "until")
        if since is not None and until is not None and since >= until:
            raise InvalidRequest("'until' must be later than 'since'.", param="until")
        if ledger is None:
            raise _NoLedger("The spend ledger is not configured on this gateway.")
    except GatewayError as error:
        return error_response(error)
    report = await ledger.query(group_by, since, until, key_id)
    body = {
        "object": "spend.report",
        "group_by": group_by,
        "since": _iso(since),
        "until": _iso(until),
        "data": [_group(group) for group in report.groups],
        "total": _totals(report.total),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _visible_key(request: Request) -> str | None:
    """The key whose spend this caller may see, or None for all (the master key)."""
    asked = request.query_params.get("key_id")
    if request.scope.get(IS_MASTER) is True:
        return asked or None
    own = request.scope.get(KEY_ID)
    if not isinstance(own, str) or not own:
        raise _Unauthenticated("You didn't provide a valid API key.")
    if asked and asked != own:
        raise _Forbidden("A virtual key may only read its own spend.", param="key_id")
    return own


def _time(text: str | None, param: str) -> datetime | None:
    return None if text is None else parse_time(text, param=param)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _usd(cost: Decimal | None) -> orjson.Fragment | None:
    """An exact JSON number: the Decimal's own digits, never a float's."""
    return None if cost is None else orjson.Fragment(format(cost, "f"))


def _totals(group: SpendGroup) -> dict[str, object]:
    return {
        "requests": group.requests,
        "prompt_tokens": group.prompt_tokens,
        "completion_tokens": group.completion_tokens,
        "cost": _usd(group.cost),
        "unpriced_requests": group.unpriced,
    }


def _group(group: SpendGroup) -> dict[str, object]:
    return {"group": group.group, **_totals(group)}
