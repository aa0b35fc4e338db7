"""A loopback fake of Anthropic's Messages API (aiohttp.web, real HTTP, SSE), scripted by the test.

`POST /v1/messages`. The key must come in `x-api-key` and `anthropic-version` must be sent; a wrong
key gets Anthropic's 401 `authentication_error`, a missing `max_tokens` its 400. Scripted replies are
answered in order: a JSON body with any status and headers (e.g. 529 `overloaded_error` with
`retry-after`), a list of SSE events, or raw SSE bytes (a golden file as captured). Without a script,
the fake answers with the last user text and a fixed usage, streamed when `"stream": true`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_on_loopback

API_KEY = "sk-ant-test-key"


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    events: list[dict[str, Any]] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # end the SSE body without `message_stop`


class AnthropicFake:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self.model_limits = {"claude-sonnet-4-5-20250929": 64000, "claude-opus-4-1-20250805": 32000}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.script.append(Reply(status=status, body=body, headers=headers or {}))

    def stream(self, events: list[dict[str, Any]], *, cut: bool = False) -> None:
        self.script.append(Reply(events=events, cut=cut))

    def stream_raw(self, raw: bytes) -> None:
        self.script.append(Reply(raw=raw))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1/messages/count_tokens", self._count)
        app.router.add_get("/v1/models", self._models)
        return app

    async def __aenter__(self) -> AnthropicFake:
        self._runner, self.base_url = await serve_on_loopback(self.app())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response(error_body("authentication_error", "invalid x-api-key"), status=401)
        if "anthropic-version" not in request.headers:
            message = "anthropic-version: header is required"
            return web.json_response(error_body("invalid_request_error", message), status=400)
        return None

    async def _models(self, request: web.Request) -> web.Response:
        """One page of the Models API, with the fields the gateway reads (`id`, `max_tokens`)."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if self.script:
            reply = self.script.pop(0)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        data = [
            {
                "type": "model",
                "id": model,
                "display_name": model,
                "created_at": "2025-09-29T00:00:00Z",
                "max_input_tokens": 200000,
                "max_tokens": limit,
            }
            for model, limit in self.model_limits.items()
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return web.json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})

    async def _count(self, request: web.Request) -> web.Response:
        """Counts one token per whitespace-separated word of every text, plus 3 per message."""
        body = await request.json()
        self.received.append(Received(dict(request.headers), body))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        for name in body:
            if name not in ("model", "messages", "system", "tools", "tool_choice", "output_config"):
                message = f"{name}: Extra inputs are not permitted"
                return web.json_response(error_body("invalid_request_error", message), status=400)
        if self.script:
            reply = self.script.pop(0)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        return web.json_response({"input_tokens": _words(body.get("system")) + _words(body["messages"])})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(Received(dict(request.headers), body))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return web.json_response(
                    error_body("invalid_request_error", f"{name}: Field required"), status=400
                )
        reply = self.script.pop(0) if self.script else _default(body)
        if reply.events is None and reply.raw is None:
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if reply.raw is not None:
            await response.write(reply.raw)
        for event in reply.events or []:
            if reply.cut and event["type"] == "message_stop":
                break
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await response.write_eof()
        return response


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, dict):
        extra = 3 if "role" in value else 0
        return extra + sum(_words(v) for k, v in value.items() if k in ("text", "content"))
    return 0


def _default(body: dict[str, Any]) -> Reply:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    content = users[-1]["content"] if users else ""
    if isinstance(content, list):
        content = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    text = f"echo: {content}"
    message = {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
        },
    }
    if not body.get("stream"):
        return Reply(body=message)
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    return Reply(
        events=[
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "ping"},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "echo: "}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": content}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
            {"type": "message_stop"},
        ]
    )
