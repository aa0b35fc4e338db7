"""`GET /admin/requests` (the per-request log, newest first, keyset-paginated and filtered) and
`GET /admin/requests/{request_id}` (one request's row). The master key and admin keys see every row.

Query parameters: `key_id`, `team`, `user`, `customer`, `model`, `provider`, `status` (a code such as
429 or a class such as 5xx), `outcome` (answered, refused_budget, refused_rate, refused_auth, failed),
`streamed`, `cut_short`, `cache_hit` (true/false), `since`, `until` (as for `/v1/spend`), `limit`
(1-500, default 50) and `before` (the `next_before` of the previous page).

A team-admin key reads its team's rows only: the `team` filter is forced (another team's is a 403) and
another team's request is a 404.
"""

from __future__ import annotations

from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError
from calcifer.domain.requests import LoggedRequest, RequestLog, parse_request_query
from calcifer.domain.roles import NotPermitted
from calcifer.http.asgi import Route
from calcifer.http.auth import caller_team
from calcifer.http.wire import money


class RequestNotFound(GatewayError):
    kind = "invalid_request_error"
    code = "request_not_found"
    http_status = 404


class NoRequestLog(GatewayError):
    kind = "server_error"
    code = "ledger_not_configured"
    http_status = 503


def _log(request: Request) -> RequestLog:
    log: RequestLog | None = getattr(request.app.state, "request_log", None)
    if log is None:
        raise NoRequestLog("The per-request log needs the gateway's database (CALCIFER_DATABASE_URL).")
    return log


def request_view(logged: LoggedRequest) -> dict[str, object]:
    row = logged.record
    return {
        "object": "request",
        "id": row.request_id,
        "ledger_id": logged.id,
        "time": row.time.isoformat().replace("+00:00", "Z"),
        "key_id": row.key_id,
        "user": row.user,
        "team": row.team,
        "customer": row.customer,
        "tags": list(row.tags),
        "model": row.model,
        "provider": row.provider,
        "status": row.status,
        "outcome": row.outcome,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": money(row.cost),
        "price_version": row.price_version,
        "latency_ms": row.latency_ms,
        "ttfb_ms": row.ttfb_ms,
        "attempts": row.attempts,
        "deployments": row.deployments.split(",") if row.deployments else [],
        "streamed": row.streamed,
        "cut_short": row.cut_short,
        "estimated": row.estimated,
        "cache_hit": row.cache_hit,
        "cost_saved": money(row.cost_saved),
    }


async def list_requests(request: Request) -> Response:
    query = parse_request_query(request.query_params)
    filters, team = query.filters, caller_team(request)
    if team is not None:
        if filters.team not in (None, team):
            raise NotPermitted(f"A team-admin key reads only team '{team}'s requests.", param="team")
        filters = replace(filters, team=team)
    page = await _log(request).page(filters, query.before, query.limit)
    body = {
        "object": "list",
        "data": [request_view(row) for row in page.rows],
        "has_more": page.next_before is not None,
        "next_before": page.next_before,
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def get_request(request: Request) -> Response:
    request_id = request.path_params["request_id"]
    found = await _log(request).find(request_id)
    team = caller_team(request)
    if found is None or (team is not None and found.record.team != team):
        raise RequestNotFound(f"No request with id '{request_id}' in the ledger.", param="request_id")
    return Response(orjson.dumps(request_view(found)), media_type="application/json")


def request_log_routes() -> list[Route]:
    return [
        Route("/admin/requests", list_requests),
        Route("/admin/requests/{request_id}", get_request),
    ]
