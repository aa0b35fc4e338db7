"""A fake OpenAI upstream: `/v1/chat/completions` and `/v1/responses` (with `GET`/`DELETE
/v1/responses/{id}` and its `input_items`) in OpenAI's exact JSON and SSE wire format.

Tests script what each next request gets (a reply, an error with headers, a hang, a reset, a stream
cut short); unscripted requests get a normal answer. Every request received is recorded (parsed, and
its exact bytes, with its headers).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.threaded import AiohttpServer

CREATED = 1764000000


@dataclass
class Script:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    chunks: list[dict[str, Any]] | None = None
    cut_after: int | None = None
    stream_error: dict[str, Any] | None = None
    raw: bytes | None = None
    events: list[bytes] | None = None  # a stream's `data:` payloads exactly as sent (then [DONE])
    # After the first chunk, wait (up to 10 s) until the test sets this event; `FakeOpenAI.held` records
    # whether the test set it (True) or the wait ran out (False).
    hold: threading.Event | None = None


def completion(
    model: str, text: str = "Hello! How can I help?", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage
        or {
            "prompt_tokens": 12,
            "completion_tokens": 25,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def stream_chunks(model: str, words: list[str], usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake2",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": w}) for w in words]
    chunks.append(chunk({}, "stop"))
    chunks.append(
        {
            "id": "chatcmpl-fake2",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage
            or {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)},
        }
    )
    return chunks


def tool_call_chunks(model: str, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    """A stream that calls one tool, its arguments in two pieces, then its usage."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**_CHUNK, "model": model, "choices": [choice], "usage": None}

    half = len(arguments) // 2
    call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]}),
        chunk({}, "tool_calls"),
        {
            **_CHUNK,
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320},
        },
    ]


_CHUNK = {
    "id": "chatcmpl-fake3",
    "object": "chat.completion.chunk",
    "created": CREATED,
    "system_fingerprint": "fp",
}


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def too_many_tokens(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 for an output limit above the model's maximum (per the catalogue), else None."""
    from calcifer.catalogue.source import max_output_for

    most = max_output_for("openai", str(body.get("model")))
    for name in ("max_completion_tokens", "max_tokens"):
        asked = body.get(name)
        if most is not None and isinstance(asked, int) and asked > most:
            message = (
                f"max_tokens is too large: {asked}. This model supports at most {most} completion "
                f"tokens, whereas you provided {asked}."
            )
            return {
                "error": {"message": message, "type": "invalid_request_error", "param": name, "code": None}
            }
    return None


class FakeOpenAI:
    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.cancelled = 0
        self.held: list[bool] = []
        self.raw_bodies: list[bytes] = []  # the Responses API requests' bodies, byte for byte
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/responses/{id}", self._stored)
        app.router.add_delete("/v1/responses/{id}", self._stored)
        app.router.add_get("/v1/responses/{id}/input_items", self._stored)
        self.kept: dict[str, dict[str, Any]] = {}  # responses made with `store` (OpenAI's own store)
        self.paths: list[str] = []  # the path (and query) of each request, in order
        self.server = AiohttpServer(app)

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"

    def script(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def close(self) -> None:
        self.server.close()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(body)
        self.raw.append(raw)
        self.headers.append(dict(request.headers))
        self.paths.append(str(request.rel_url))
        script = self.scripts.popleft() if self.scripts else Script()
        refusal = too_many_tokens(body)
        if refusal is not None:
            return web.json_response(refusal, status=400, dumps=_dumps)
        try:
            if script.delay:
                await asyncio.sleep(script.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if script.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=200)
        if script.raw is not None:
            return web.Response(status=script.status, body=script.raw, headers=script.headers)
        if script.status != 200:
            return web.json_response(script.body, status=script.status, headers=script.headers, dumps=_dumps)
        model = body.get("model", "gpt-4o")
        if not body.get("stream"):
            return web.json_response(script.body or completion(model), dumps=_dumps, headers=script.headers)
        return await self._stream(request, script, model)

    async def _stream(self, request: web.Request, script: Script, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = script.chunks or stream_chunks(model, ["Hel", "lo", "!"])
        if script.events is not None:
            for data in script.events:
                await response.write(b"data: " + data + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        try:
            for i, chunk in enumerate(chunks):
                if script.cut_after is not None and i == script.cut_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if script.stream_error is not None and i == 2:
                    await response.write(b"data: " + orjson.dumps(script.stream_error) + b"\n\n")
                    return response
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                if script.hold is not None and i == 0:
                    self.held.append(await asyncio.to_thread(script.hold.wait, 10))
                if script.delay:
                    await asyncio.sleep(script.delay)
            await response.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled += 1
            raise
        return response

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API: `Script.body` is the response to answer (default: a short text answer),
        streamed as its event sequence; `Script.chunks` replaces that sequence (events as sent)."""
        from tests.fakes import openai_responses as api

        self.raw_bodies.append(await request.read())
        body = orjson.loads(self.raw_bodies[-1])
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(str(request.rel_url))
        script = self.scripts.popleft() if self.scripts else Script()
        if script.status != 200:
            return web.json_response(script.body, status=script.status, headers=script.headers, dumps=_dumps)
        final = script.body or api.response(body.get("model", "gpt-4o"), request=body)
        if body.get("store") is not False:
            self.kept[final["id"]] = {"response": final, "input": body.get("input")}
        if not body.get("stream"):
            return web.json_response(final, dumps=_dumps)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, event in enumerate(script.chunks or api.events(final)):
            if script.cut_after is not None and i == script.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(
                b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
            )
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Embeddings: `Script.status`/`body` when scripted, else `tests.fakes.embeddings`' answer."""
        from tests.fakes.embeddings import openai_answer

        body = orjson.loads(await request.read())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(str(request.rel_url))
        script = self.scripts.popleft() if self.scripts else Script()
        if script.status != 200 or script.body is not None:
            return web.json_response(script.body, status=script.status, headers=script.headers, dumps=_dumps)
        return web.json_response(openai_answer(body), dumps=_dumps)

    async def _stored(self, request: web.Request) -> web.Response:
        self.paths.append(str(request.rel_url))
        kept = self.kept.get(request.match_info["id"])
        if kept is None:
            message = f"Response with id '{request.match_info['id']}' not found."
            return web.json_response(error_body(message, "invalid_request_error"), status=404, dumps=_dumps)
        if request.method == "DELETE":
            del self.kept[request.match_info["id"]]
            return web.json_response({"id": request.match_info["id"], "object": "response", "deleted": True})
        if request.path.endswith("/input_items"):
            items = (
                kept["input"]
                if isinstance(kept["input"], list)
                else [{"role": "user", "content": kept["input"]}]
            )
            data = [
                {"id": f"msg_in{i}", "type": "message", "status": "completed", **item}
                for i, item in enumerate(items)
            ]
            page = {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"],
                "last_id": data[-1]["id"],
                "has_more": False,
            }
            return web.json_response(page, dumps=_dumps)
        return web.json_response(kept["response"], dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
