"""The gateway's ASGI application: one flat dispatcher instead of a stack of middleware.

Per request it does, in one place and once: take or make the request id; refuse oversized headers
(431); answer CORS preflights and add CORS headers (`cors`); identify the caller (master key, virtual
key, or anyone when keys are off); route by path and method (a dict lookup; HEAD served by a GET route,
a 405 naming the methods in `Allow`); turn errors into the route's error shape, and anything unexpected
into a 500 in that shape that names the request in the log; and hand the request's facts to the
finishers: the `recorders` (the spend ledger) just before the response's last body message goes out, so
that a client never holds a whole answer its process has not recorded, and the others (access log,
metrics) once it has been sent (or the client went away: 499). A
stack of Starlette middleware did the same with six wrapped `send` callables per message; the
benchmark in `bench/` showed that cost, so it is done here with plain code. Handlers still get
Starlette `Request`s and return Starlette `Response`s (or an `EventStream`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import State
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calcifer.domain.errors import GatewayError
from calcifer.http.auth import IDENTITY_KEY, Authenticator, Forbidden, Identity, may_administer
from calcifer.http.cors import Cors
from calcifer.http.errors import HeadersTooLarge, InternalError, MethodNotAllowed, RouteNotFound
from calcifer.http.headers import request_id as is_request_id
from calcifer.http.middleware import FACTS_KEY, Finisher, RequestFacts

_log = logging.getLogger("calcifer")
_UNSENDABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # what no header value may hold (tab may)
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


class RequestTracer(Protocol):
    """A span per request (tracing on): started as it arrives, ended with its facts once it is over."""

    def start(self, headers: Iterable[tuple[bytes, bytes]], method: str) -> object: ...

    def end(self, handle: object, facts: RequestFacts) -> None: ...


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
class HeaderLimits:
    """The most request headers, and header bytes (names and values), a request may carry (else 431)."""

    count: int = 100
    size: int = 64 * 1024


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
        recorders: Iterable[Finisher] = (),
        render_error: ErrorRenderer,
        in_flight: Tally | None = None,
        tracer: RequestTracer | None = None,
        header_limits: HeaderLimits = HeaderLimits(),
    ) -> None:
        self.state = state
        self._header_limits = header_limits
        self._lifespan = lifespan
        self._authenticator = authenticator
        self._cors = cors
        self._finishers = tuple(finishers)
        self._recorders = tuple(recorders)
        self._render = render_error
        self._in_flight = in_flight
        self._tracer = tracer
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
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"x-request-id" and is_request_id(value):
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
        started = recorded = False
        recorders = self._recorders
        in_flight = self._in_flight
        if in_flight is not None:
            in_flight.inc()
        tracer = self._tracer
        traced = tracer.start(scope["headers"], scope["method"]) if tracer is not None else None

        async def reply(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                headers = message["headers"] = [*message.get("headers", ()), *extra]
                if _UNSENDABLE.search(b"\t".join([value for _, value in headers])):
                    # The server would refuse this head after marking the response started, and
                    # then close the connection unanswered: refuse it here, while a 500 can still go.
                    raise ValueError("a response header value has a control character")
                await send(message)
                started = True
                facts.head_sent = time.perf_counter()
                if facts.status == 499:
                    facts.status = message["status"]
                return
            if recorders and not recorded and not message.get("more_body", False):
                record()
            await send(message)

        def record() -> None:
            nonlocal recorded
            recorded = True
            facts.latency_ms = round((time.perf_counter() - facts.started) * 1000, 3)
            for recorder in recorders:
                recorder(facts)

        try:
            try:
                self._check_headers(len(scope["headers"]), header_bytes)
                response = await self._respond(scope, receive, path, origin if preflight else b"")
                await response(scope, receive, reply)
            except GatewayError as error:
                facts.error = error
                facts.refusal = facts.refusal or error.refusal
                if not started:
                    await self._render(path, error)(scope, receive, reply)
        except ClientDisconnect:  # the client went away before its request was read: nobody to answer
            facts.status = 499
        except Exception as error:  # the one place an unexpected error is turned into a clean 500
            _log.error(
                "unhandled error on %s %s (request_id %s): %s at %s",
                scope["method"],
                path,
                facts.request_id,
                type(error).__name__,
                _where(error),
            )
            if not started:
                facts.status = 500
                await self._render(path, InternalError())(scope, receive, reply)
        finally:
            if in_flight is not None:
                in_flight.dec()
            if recorded:  # at the last body message: the latency now counts its send too
                facts.latency_ms = round((time.perf_counter() - facts.started) * 1000, 3)
            else:
                record()
            for finish in self._finishers:
                finish(facts)
            if tracer is not None:
                tracer.end(traced, facts)

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
        if handler is None and method == "HEAD":
            handler = table.get("GET")  # the server sends the head of the GET answer, without its body
        if handler is None:
            allow = (*table, "HEAD") if "GET" in table and "HEAD" not in table else tuple(table)
            raise MethodNotAllowed(f"Method {method} is not allowed on {path}.", allow)
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

    def _check_headers(self, count: int, size: int) -> None:
        limits = self._header_limits
        if count > limits.count:
            raise HeadersTooLarge(f"The request has {count} headers; the limit is {limits.count}.")
        if size > limits.size:
            raise HeadersTooLarge(f"The request's headers are {size} bytes; the limit is {limits.size}.")

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
        if (
            path.startswith("/admin")
            and authenticator.enabled
            and not may_administer(identity, path, scope["method"])
        ):
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


def _where(error: BaseException) -> str:
    """Where an error was raised (file:line in function), for the log: never its message, which may
    carry what a client sent."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno} in {last.name}"
