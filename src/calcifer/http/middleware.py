"""Pure ASGI middleware: request id, and one JSON access-log line per request."""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calcifer.observability.logging import access_line

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
LOG_KEY = "calcifer.log"


class RequestContext:
    """Takes `X-Request-ID` from the request (or makes one), returns it, and logs the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_ID.match(value):
                request_id = value
                break
        if not request_id:
            request_id = uuid.uuid4().hex.encode()
        log: dict[str, object] = {
            "request_id": request_id.decode(),
            "method": scope["method"],
            "path": scope["path"],
        }
        scope[LOG_KEY] = log

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                log["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.setdefault("status", 499)
            log["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            access_line(log)
