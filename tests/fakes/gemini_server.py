"""A loopback fake of Gemini's REST API (aiohttp.web, real HTTP, SSE), scripted by the test.

`POST /v1beta/models/{model}:generateContent` and `...:streamGenerateContent?alt=sse`. The key must
come in `x-goog-api-key`; a wrong key gets Gemini's real answer (400 INVALID_ARGUMENT, API_KEY_INVALID).
Without a script, the fake answers with the last user text and a fixed usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_on_loopback

BAD_KEY_BODY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    }
}


@dataclass
class Received:
    model: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    events: list[dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class GeminiFake:
    def __init__(self, api_key: str = "gemini-test-key") -> None:
        self.api_key = api_key
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.script.append(Reply(status=status, body=body, headers=headers or {}))

    def stream(self, events: list[dict[str, Any]]) -> None:
        self.script.append(Reply(events=events))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/models/{target}", self._handle)
        return app

    async def __aenter__(self) -> GeminiFake:
        self._runner, self.base_url = await serve_on_loopback(self.app())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        raw = await request.read()
        body = json.loads(raw)
        self.received.append(Received(model, method, dict(request.query), dict(request.headers), body, raw))
        if "key" in request.query or request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response(BAD_KEY_BODY, status=400)
        if method == "batchEmbedContents" and not self.script:
            from tests.fakes.embeddings import gemini_answer

            return web.json_response(gemini_answer(body))
        if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return web.json_response({"error": {"code": 404, "message": "no such method"}}, status=404)
        reply = self.script.pop(0) if self.script else _default(model, body, method)
        if reply.events is None:
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return web.json_response({"error": {"code": 400, "message": "expected alt=sse"}}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in reply.events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        await response.write_eof()
        return response


def function_call_events(model: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """A stream that calls one function (Gemini sends the call whole, with no id)."""
    part = {"functionCall": {"name": name, "args": args}}
    usage = {
        "promptTokenCount": 400,
        "candidatesTokenCount": 15,
        "thoughtsTokenCount": 25,
        "totalTokenCount": 440,
    }
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
    return [
        {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "fake-fc"}
    ]


def _default(model: str, body: dict[str, Any], method: str) -> Reply:
    user = [c for c in body.get("contents", []) if c.get("role") == "user"]
    text = "".join(p.get("text", "") for p in user[-1]["parts"]) if user else ""
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 14}
    base: dict[str, Any] = {"modelVersion": model, "responseId": "fake-response"}
    if method == "generateContent":
        candidate = {"content": {"role": "model", "parts": [{"text": f"echo: {text}"}]}, "index": 0}
        return Reply(
            body={"candidates": [{**candidate, "finishReason": "STOP"}], "usageMetadata": usage, **base}
        )
    events: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "echo: "}]}, "index": 0}], **base},
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": usage,
            **base,
        },
    ]
    return Reply(events=events)
