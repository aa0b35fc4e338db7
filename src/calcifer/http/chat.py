"""Chat endpoints: OpenAI's `/v1/chat/completions` and the original `/v1/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError
from calcifer.domain.gateway import GatewayService
from calcifer.domain.types import ChatRequest, JSONObject, Priced, StreamChunk, StreamOutcome, Usage
from calcifer.http import original
from calcifer.http.errors import error_payload, status_of
from calcifer.http.middleware import LOG_KEY
from calcifer.http.sse import DONE, EventStream, event
from calcifer.http.wire import chat_request, json_object, money, read_body


async def parse(request: Request) -> tuple[GatewayService, JSONObject]:
    state = request.app.state
    raw = await read_body(request, state.settings.max_body_bytes, state.settings.read_timeout)
    return state.gateway, json_object(raw)


def note(request: Request, chat: ChatRequest, priced: Priced | StreamOutcome | None = None) -> None:
    """Record what the access log (and the ledger) needs about this request."""
    log: dict[str, Any] = request.scope[LOG_KEY]
    log["model"] = chat.model
    log["stream"] = chat.stream
    if priced is None:
        return
    log["provider"] = priced.provider
    usage = priced.usage
    if usage is not None:
        log["prompt_tokens"] = usage.prompt_tokens
        log["completion_tokens"] = usage.completion_tokens
    log["cost"] = None if priced.cost is None else format(priced.cost, "f")


def cost_headers(priced: Priced) -> dict[str, str]:
    headers = {"x-calcifer-provider": priced.provider, "x-calcifer-model": priced.model}
    if priced.cost is not None:
        headers["x-calcifer-cost"] = format(priced.cost, "f")
    return headers


def json_response(body: object, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def chat_completions(request: Request) -> Response | EventStream:
    gateway, body = await parse(request)
    chat = chat_request(body)
    note(request, chat)
    if chat.stream:
        outcome = StreamOutcome()
        chunks = gateway.stream(chat, outcome)
        first = await _first(chunks)
        headers = {"x-calcifer-provider": outcome.provider, "x-calcifer-model": chat.model}
        frames = _openai_frames(first, chunks, chat, outcome, request)
        return EventStream(frames, headers=headers, write_timeout=request.app.state.settings.write_timeout)
    response, priced = await gateway.complete(chat)
    note(request, chat, priced)
    usage = response.body.get("usage")
    if isinstance(usage, dict):
        usage["cost"] = money(priced.cost)
    return json_response(response.body, cost_headers(priced))


async def completions(request: Request) -> Response | EventStream:
    """The original API: `{model, messages}` in, `{content, usage: {cost}}` out (or OpenAI's legacy
    `prompt` form, answered in its `text_completion` shape)."""
    gateway, body = await parse(request)
    legacy = "messages" not in body and "prompt" in body
    chat = chat_request(original.legacy_to_chat(body) if legacy else body)
    note(request, chat)
    if chat.stream:
        outcome = StreamOutcome()
        chunks = gateway.stream(chat, outcome)
        first = await _first(chunks)
        headers = {"x-calcifer-provider": outcome.provider, "x-calcifer-model": chat.model}
        frames = _original_frames(first, chunks, chat, outcome, request, legacy)
        return EventStream(frames, headers=headers, write_timeout=request.app.state.settings.write_timeout)
    response, priced = await gateway.complete(chat)
    note(request, chat, priced)
    shape = original.legacy_response if legacy else original.response
    return json_response(shape(response.body, priced), cost_headers(priced))


async def _first(chunks: AsyncIterator[StreamChunk]) -> StreamChunk | None:
    """Wait for the first chunk before answering 200, so failures before it are proper HTTP errors."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


async def _relay(
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    outcome: StreamOutcome,
    request: Request,
    chat: ChatRequest,
) -> AsyncIterator[StreamChunk]:
    """Every chunk of the stream; afterwards the outcome is noted, whatever ended the stream."""
    try:
        chunk = first
        while chunk is not None:
            yield chunk
            chunk = await anext(chunks, None)
    finally:
        note(request, chat, outcome)
        await chunks.aclose()  # type: ignore[attr-defined]


async def _openai_frames(
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    chat: ChatRequest,
    outcome: StreamOutcome,
    request: Request,
) -> AsyncIterator[bytes]:
    try:
        async for chunk in _relay(first, chunks, outcome, request, chat):
            data = chunk.data
            if chunk.usage is not None and not data.get("choices"):
                if chat.include_usage:
                    usage = data.get("usage")
                    if isinstance(usage, dict):
                        usage["cost"] = money(outcome.cost)
                    yield event(data)
                continue
            if not chat.include_usage and "usage" in data and data["usage"] is None:
                del data["usage"]
            yield event(data)
        yield DONE
    except GatewayError as error:
        outcome.error = error.message
        request.scope[LOG_KEY]["status"] = status_of(error)
        yield event(error_payload(error))


async def _original_frames(
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    chat: ChatRequest,
    outcome: StreamOutcome,
    request: Request,
    legacy: bool,
) -> AsyncIterator[bytes]:
    finish: str | None = None
    try:
        async for chunk in _relay(first, chunks, outcome, request, chat):
            delta, reason = original.delta_of(chunk.data)
            finish = reason or finish
            if delta:
                yield event(original.legacy_chunk(chunk.data, delta, None) if legacy else {"content": delta})
        usage: Usage | None = outcome.usage
        if legacy:
            yield event(original.legacy_final(chat.model, finish, usage, outcome.cost))
        else:
            yield event(
                {"content": "", "finish_reason": finish, "usage": original.usage_json(usage, outcome.cost)}
            )
        yield DONE
    except GatewayError as error:
        outcome.error = error.message
        request.scope[LOG_KEY]["status"] = status_of(error)
        yield event(error_payload(error))
