"""The gateway's ASGI application: one flat dispatcher instead of a stack of middleware.

Per request it does, in one place and once: take or make the request id; answer CORS preflights and
add CORS headers; identify the caller (master key, virtual key, or anyone when keys are off); route by
path and method (a dict lookup); turn errors into the route's error shape; and, once the response has
been sent, hand the request's facts to the finishers (access log, spend ledger). A stack of Starlette
middleware did the same with six wrapped `send` callables per message; the benchmark in `bench/`
showed that cost, so it is done here with plain code. Handlers still get Starlette `Request`s and
return Starlette `Response`s (or an `EventStream`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calcifer.domain.errors import GatewayError
from calcifer.http.auth import IDENTITY_KEY, Authenticator, Forbidden, Identity, may_administer
from calcifer.http.errors import MethodNotAllowed, RouteNotFound, internal_error_response
from calcifer.http.middleware import FACTS_KEY, Finisher, RequestFacts

_log = logging.getLogger("calcifer")
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
# Answered without identifying the caller (`/metrics` checks its own token, `CALCIFER_METRICS_TOKEN`).
_OPEN_PATHS = frozenset({"/health", "/ready", "/health/live", "/health/ready", "/metrics"})


def _is_console(path: str) -> bool:
    """The console (`/ui`) authenticates its own requests, with a session cookie instead of a key."""
    return path == "/ui" or path.startswith("/ui/")


class _RequestIds:
    """Unique request ids without a system call each: 64 random bits per process, then a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._counter):016x}".encode()


_request_ids = _RequestIds()

Handler = Callable[[Request], Awaitable[ASGIApp]]


class Tally(Protocol):
    """A gauge of requests being answered."""

    def inc(self) -> None: ...

    def dec(self) -> None: ...


ErrorRenderer = Callable[[str, GatewayError], Response]
Lifespan = Callable[["GatewayApp"], contextlib.AbstractAsyncContextManager[None]]


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    handler: Handler
    methods: Sequence[str] = ("GET",)


@dataclass(frozen=True, slots=True)
class Cors:
    """CORS as the `CORS_ALLOWED_*` settings say; `*` allows any origin (or header)."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...] = ()
    _lower_headers: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lower_headers", frozenset(h.lower() for h in self.headers))

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def preflight(self, origin: str, method: str, requested_headers: str) -> Response:
        wanted = [h.strip().lower() for h in requested_headers.split(",") if h.strip()]
        allowed = (
            self.allows_origin(origin)
            and method in self.methods
            and ("*" in self.headers or all(h in self._lower_headers for h in wanted))
        )
        if not allowed:
            return Response("Disallowed CORS request", status_code=400, media_type="text/plain")
        allowed_headers = requested_headers if "*" in self.headers else ", ".join(self.headers)
        headers = {
            "access-control-allow-origin": "*" if "*" in self.origins else origin,
            "access-control-allow-methods": ", ".join(self.methods),
            "access-control-allow-headers": allowed_headers,
            "access-control-max-age": "600",
            "vary": "Origin",
        }
        return Response(b"OK", status_code=200, media_type="text/plain", headers=headers)

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        value = b"*" if "*" in self.origins else origin
        headers = [(b"access-control-allow-origin", value), (b"vary", b"Origin")]
        if self.expose:
            headers.append((b"access-control-expose-headers", ", ".join(self.expose).encode()))
        return headers


class GatewayApp:
    def __init__(
        self,
        routes: Sequence[Route],
        *,
        state: State,
        lifespan: Lifespan,
        authenticator: Authenticator,
        cors: Cors,
        finishers: Iterable[Finisher],
        render_error: ErrorRenderer,
        in_flight: Tally | None = None,
    ) -> None:
        self.state = state
        self._lifespan = lifespan
        self._authenticator = authenticator
        self._cors = cors
        self._finishers = tuple(finishers)
        self._render = render_error
        self._in_flight = in_flight
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        self._templates: dict[str, str] = {}
        for route in routes:
            if "{" in route.path:
                regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path) + "$")
                self._templates[regex.pattern] = route.path
                table = next((t for p, t in self._patterns if p.pattern == regex.pattern), None)
                if table is None:
                    table = {}
                    self._patterns.append((regex, table))
            else:
                table = self._exact.setdefault(route.path, {})
            for method in route.methods:
                table[method] = route.handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._run_lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = b""
        origin = b""
        preflight = False
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_ID.match(value):
                request_id = value
            elif name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = scope["method"] == "OPTIONS"
        if not request_id:
            request_id = _request_ids.next()
        path: str = scope["path"]
        facts = RequestFacts(request_id.decode(), scope["method"], path, time.perf_counter())
        scope[FACTS_KEY] = facts
        scope["app"] = self
        extra = [(b"x-request-id", request_id)]
        if origin and not preflight and self._cors.allows_origin(origin.decode("latin-1")):
            extra += self._cors.response_headers(origin)
        started = False
        in_flight = self._in_flight
        if in_flight is not None:
            in_flight.inc()

        async def reply(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if facts.status == 499:
                    facts.status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            response = await self._respond(scope, receive, path, origin if preflight else b"")
            await response(scope, receive, reply)
        except GatewayError as error:
            facts.error = error
            facts.refusal = facts.refusal or error.refusal
            if not started:
                await self._render(path, error)(scope, receive, reply)
        except Exception as error:  # the one place an unexpected error is turned into a clean 500
            _log.error("unhandled error on %s %s: %s", scope["method"], path, type(error).__name__)
            if not started:
                await internal_error_response()(scope, receive, reply)
        finally:
            facts.latency_ms = round((time.perf_counter() - facts.started) * 1000, 3)
            if in_flight is not None:
                in_flight.dec()
            for finish in self._finishers:
                finish(facts)

    async def _respond(self, scope: Scope, receive: Receive, path: str, preflight_origin: bytes) -> ASGIApp:
        method: str = scope["method"]
        if preflight_origin:
            requested = Request(scope).headers
            return self._cors.preflight(
                preflight_origin.decode("latin-1"),
                requested["access-control-request-method"],
                requested.get("access-control-request-headers", ""),
            )
        handler = self._handler(scope, path, method)
        if path not in _OPEN_PATHS and not _is_console(path):
            await self._identify(scope, path)
        return await handler(Request(scope, receive))

    def _handler(self, scope: Scope, path: str, method: str) -> Handler:
        table = self._exact.get(path)
        if table is not None:
            scope[FACTS_KEY].route = path
        else:
            for regex, candidate in self._patterns:
                match = regex.match(path)
                if match is not None:
                    scope["path_params"] = match.groupdict()
                    scope[FACTS_KEY].route = self._templates[regex.pattern]
                    table = candidate
                    break
        if table is None:
            raise RouteNotFound(f"Unknown path: {method} {path}.")
        handler = table.get(method)
        if handler is None:
            raise MethodNotAllowed(f"Method {method} is not allowed on {path}.")
        return handler

    async def call(
        self, identity: Identity, method: str, path: str, query: str = "", body: bytes = b""
    ) -> tuple[int, bytes]:
        """An API request made inside the process (by the console) as `identity`: the same route
        table, authorisation rule, handlers and error shapes a script meets over HTTP; (status, body)."""
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": None,
            "server": None,
            "app": self,
            FACTS_KEY: RequestFacts("console", method, path, time.perf_counter()),
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        response: ASGIApp
        try:
            handler = self._handler(scope, path, method)
            self._authorize(scope, path, identity)
            response = await handler(Request(scope, receive))
        except GatewayError as error:
            response = self._render(path, error)
        await response(scope, receive, send)
        return status, b"".join(chunks)

    async def _identify(self, scope: Scope, path: str) -> None:
        authenticator = self._authenticator
        presented: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                text = value.decode("latin-1").strip()
                presented = (text[7:].strip() if text[:7].lower() == "bearer " else text) or None
                break
            if name == b"x-api-key":
                presented = value.decode("latin-1").strip() or None
                break
        self._authorize(scope, path, await authenticator.identify(presented))

    def _authorize(self, scope: Scope, path: str, identity: Identity) -> None:
        authenticator = self._authenticator
        if path.startswith("/admin") and authenticator.enabled and not may_administer(identity, path):
            raise Forbidden("The admin API needs the master key or an admin key.")
        scope[IDENTITY_KEY] = identity
        scope["calcifer.is_master"] = identity.is_master or not authenticator.enabled
        scope["calcifer.key_id"] = identity.key.id if identity.key is not None else None

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        context = self._lifespan(self)
        try:
            await context.__aenter__()
        except Exception as error:  # start-up failed: tell the server, which exits
            _log.error("start-up failed: %s", error)
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        try:
            await context.__aexit__(None, None, None)
        except Exception as error:
            await send({"type": "lifespan.shutdown.failed", "message": str(error)})
            return
        await send({"type": "lifespan.shutdown.complete"})
