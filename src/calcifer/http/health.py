"""Health endpoints: `/health` and `/ready` (as they always were), and the probes an orchestrator wants:
`/health/live` (the process answers) and `/health/ready` (it should get traffic: started, not draining,
its database reachable, and Redis when configured). None of them needs a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import orjson
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.ports import Credentialed, Reachable

_log = logging.getLogger("calcifer")
_OK = b'{"status":"ok"}'


class Readiness:
    """The dependency checks behind `/health/ready`. Each runs at most once per `ttl` seconds however
    many probes arrive (they share the last result), and is bounded by `timeout` seconds. A check is
    "ok", "unreachable", or "not configured" (None: Redis when `CALCIFER_REDIS_URL` is unset)."""

    def __init__(self, checks: Mapping[str, Reachable | None], *, timeout: float = 2.0, ttl: float = 1.0):
        self._checks = dict(checks)
        self._timeout = timeout
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._last: dict[str, str] = {}
        self._at = float("-inf")

    async def results(self) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if loop.time() - self._at >= self._ttl:
                names = list(self._checks)
                found = await asyncio.gather(*(self._check(name, self._checks[name]) for name in names))
                self._last = dict(zip(names, found, strict=True))
                self._at = loop.time()
            return self._last

    async def _check(self, name: str, target: Reachable | None) -> str:
        if target is None:
            return "not configured"
        try:
            async with asyncio.timeout(self._timeout):
                await target.ping()
        except Exception as error:  # any failure means "not ready"; its text may name a host, never shown
            _log.warning("readiness: %s is unreachable (%s)", name, type(error).__name__)
            return "unreachable"
        return "ok"


def serving(state: State) -> bool:
    """Started, and not draining."""
    drain = getattr(state, "drain", None)
    return bool(getattr(state, "ready", False)) and not (drain is not None and drain.draining)


async def health(request: Request) -> Response:
    return Response(_OK, media_type="application/json")


async def ready(request: Request) -> Response:
    state = request.app.state
    providers = {
        name: ("configured" if not isinstance(p, Credentialed) or p.configured else "not configured")
        for name, p in state.gateway.registry.providers.items()
    }
    is_ready = serving(state)
    body = {"status": "ready" if is_ready else "not ready", "providers": providers}
    return Response(orjson.dumps(body), status_code=200 if is_ready else 503, media_type="application/json")


async def live(request: Request) -> Response:
    """The process answers (and keeps answering while it drains: a restart would cut what is in flight)."""
    return Response(_OK, media_type="application/json")


async def ready_probe(request: Request) -> Response:
    state = request.app.state
    started = bool(getattr(state, "ready", False))
    drain = getattr(state, "drain", None)
    draining = drain is not None and drain.draining
    checks: dict[str, str] = {}
    readiness: Readiness | None = getattr(state, "readiness", None)
    if started and not draining and readiness is not None:
        checks = await readiness.results()
    is_ready = started and not draining and all(v != "unreachable" for v in checks.values())
    status = "ready" if is_ready else "draining" if draining else "starting" if not started else "not ready"
    body = {"status": status, "started": started, "draining": draining, "checks": checks}
    return Response(orjson.dumps(body), status_code=200 if is_ready else 503, media_type="application/json")
