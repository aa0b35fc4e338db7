"""A loopback fake of Anthropic's Messages API (aiohttp.web, real HTTP, SSE), scripted by the test.

`POST /v1/messages`. The key must come in `x-api-key` and `anthropic-version` must be sent; a wrong
key gets Anthropic's 401 `authentication_error`, a missing `max_tokens` its 400. Scripted replies are
answered in order: a JSON body with any status and headers (e.g. 529 `overloaded_error` with
`retry-after`), a list of SSE events, or raw SSE bytes (a golden file as captured). Without a script,
the fake answers with the last user text and a fixed usage, streamed when `"stream": true`. Every
request is recorded with its exact bytes, headers and query string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_on_loopback

API_KEY = "sk-ant-test-key"
# What `/v1/messages/count_tokens` accepts of a Messages request.
_COUNT_FIELDS = (
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "output_config",
    "thinking",
    "context_management",
)


def compact(value: Any) -> str:
    """JSON as Anthropic writes it: no spaces."""
    return json.dumps(value, separators=(",", ":"))


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    query: str = ""


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
        if len(request.headers.getall("anthropic-version", [])) != 1:
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
            return web.json_response(reply.body, status=reply.status, headers=reply.headers, dumps=compact)
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
        raw = await request.read()
        body = json.loads(raw)
        self.received.append(Received(dict(request.headers), body, raw, request.query_string))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        for name in body:
            if name not in _COUNT_FIELDS:
                message = f"{name}: Extra inputs are not permitted"
                return web.json_response(error_body("invalid_request_error", message), status=400)
        if self.script:
            reply = self.script.pop(0)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers, dumps=compact)
        return web.json_response({"input_tokens": _words(body.get("system")) + _words(body["messages"])})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.received.append(Received(dict(request.headers), body, raw, request.query_string))
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
            return web.json_response(reply.body, status=reply.status, headers=reply.headers, dumps=compact)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if reply.raw is not None:
            await response.write(reply.raw)
        for event in reply.events or []:
            if reply.cut and event["type"] == "message_stop":
                break
            await response.write(f"event: {event['type']}\ndata: {compact(event)}\n\n".encode())
        await response.write_eof()
        return response


def message_start(model: str, input_tokens: int = 11, message_id: str = "msg_fake01") -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        },
    }
    return {"type": "message_start", "message": message}


def message_end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return [
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


def tool_use_events(
    model: str, name: str, tool_input: dict[str, Any], *, thinking: str, signature: str, tool_id: str
) -> list[dict[str, Any]]:
    """A stream that thinks (with a signed thinking block), then calls one tool."""
    arguments = json.dumps(tool_input)
    return [
        message_start(model, 120, "msg_fake_tool"),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": thinking},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": signature},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
        },
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": arguments},
        },
        {"type": "content_block_stop", "index": 1},
        *message_end("tool_use", 40),
    ]


def text_events(
    model: str, text: str, input_tokens: int = 200, output_tokens: int = 9
) -> list[dict[str, Any]]:
    return [
        message_start(model, input_tokens, "msg_fake_text"),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        *message_end("end_turn", output_tokens),
    ]


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
