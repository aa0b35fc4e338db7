"""`GET /v1/spend`: the spend ledger, grouped, as JSON with exact costs.

Query parameters: `group_by` = key | team | user | customer | tag | model | provider | day, or two of
them (`team,model`; default model), `since` and `until` (ISO 8601, UTC when no zone is given, or a span
back from now such as `7d`; since inclusive, until exclusive, both widened to whole UTC days since
reports read daily rollups), `key_id`, `team`, `user`, `customer`, `tag` (filters), and `scope`
(all | team | user | customer | key: whose spend, by default the widest the caller may read).

Who sees what is decided by `calcifer.domain.roles.spend_scope` from the caller the authentication
middleware names: `scope["calcifer.is_master"] = True` (the master key, or a gateway running without a
master key, where everyone is master) sees every key's spend; otherwise the virtual key in
`scope["calcifer.identity"]` sees what its role and owners allow (an admin key all, a team-admin key
its team, any key its own spend and, asked for, its user's or team's). With neither, the answer is
401. The ledger is `app.state.ledger` (a `SpendLedger`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.keys import VirtualKey
from calcifer.domain.ledger import GroupBy, SpendFilter, SpendGroup, SpendLedger, parse_group_by, parse_time
from calcifer.domain.roles import spend_scope
from calcifer.http.auth import caller_key
from calcifer.http.errors import error_response

IS_MASTER = "calcifer.is_master"
_FILTERS = {"key_id": "key", "team": "team", "user": "user", "customer": "customer", "tag": "tag"}
_PARAMS = frozenset({"group_by", "since", "until", "scope", *_FILTERS})


class _Unauthenticated(GatewayError):
    kind = "invalid_request_error"
    code = "invalid_api_key"
    http_status = 401


class _NoLedger(GatewayError):
    kind = "server_error"
    code = "ledger_not_configured"
    http_status = 503


async def spend(request: Request) -> Response:
    ledger: SpendLedger | None = getattr(request.app.state, "ledger", None)
    try:
        caller = _caller(request)
        params = request.query_params
        unknown = sorted(set(params) - _PARAMS)
        if unknown:
            raise InvalidRequest(f"Unknown query parameter '{unknown[0]}'.", param=unknown[0])
        group_by = parse_group_by(params.get("group_by", "model"))
        since = _time(params.get("since"), "since")
        until = _time(params.get("until"), "until")
        if since is not None and until is not None and since >= until:
            raise InvalidRequest("'until' must be later than 'since'.", param="until")
        key_id, where = _visible(caller, params, group_by)
        if ledger is None:
            raise _NoLedger("The spend ledger is not configured on this gateway.")
    except GatewayError as error:
        return error_response(error)
    report = await ledger.query(group_by, since, until, key_id, where=where)
    body = {
        "object": "spend.report",
        "group_by": ",".join(group_by),
        "since": _iso(report.since),
        "until": _iso(report.until),
        "data": [_group(group, group_by) for group in report.groups],
        "total": _totals(report.total),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _caller(request: Request) -> VirtualKey | None:
    """The key asking (None: the master key)."""
    if request.scope.get(IS_MASTER) is True:
        return None
    key = caller_key(request)
    if key is None:
        raise _Unauthenticated("You didn't provide a valid API key.")
    return key


def _visible(
    caller: VirtualKey | None, params: Mapping[str, str], group_by: tuple[GroupBy, ...]
) -> tuple[str | None, SpendFilter]:
    """The key (None: any) and the filters the report runs with, within what `caller` may see."""
    asked = {_FILTERS[name]: value for name, value in params.items() if name in _FILTERS and value}
    where = spend_scope(caller, params.get("scope"), asked, group_by)
    return where.pop("key", None), where


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
        "refused": {
            "budget": group.refused_budget,
            "rate_limit": group.refused_rate,
            "auth": group.refused_auth,
        },
        "failed": group.failed,
        "prompt_tokens": group.prompt_tokens,
        "completion_tokens": group.completion_tokens,
        "cached_tokens": group.cached_tokens,
        "cache_write_tokens": group.cache_write_tokens,
        "reasoning_tokens": group.reasoning_tokens,
        "cost": _usd(group.cost),
        "cost_saved": _usd(group.cost_saved),
        "unpriced_requests": group.unpriced,
    }


def _group(group: SpendGroup, group_by: tuple[str, ...]) -> dict[str, object]:
    """A group: `group` is its value (a list of values when grouped by two dimensions), and each
    dimension's value is also under its own name."""
    named = dict(zip(group_by, group.values, strict=True))
    value: object = group.values[0] if len(group.values) == 1 else list(group.values)
    return {"group": value, **named, **_totals(group)}
