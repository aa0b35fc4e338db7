"""Anthropic's `/v1/messages` and `/v1/messages/count_tokens`, for any routable model.

A request is kept as the client sent it (`anthropic_native.native_call`) beside its translation into
the gateway's OpenAI shape (`anthropic_inbound.openai_body`), and served by the same `GatewayService`
as `/v1/chat/completions`. A deployment whose provider speaks the Messages API gets the client's own
call and its answer is relayed as the upstream's bytes; any other gets the translation, and its answer
is translated back. Either way `usage.cost` (USD) is added and errors use Anthropic's shape.

On the native lane the gateway checks only what it needs itself (a model, a JSON object, the key's
limits and budget): the rest is the upstream's to judge, and its 4xx reaches the client unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import ExactTokenCounter, TokenCounter, speaks
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatRequest, StreamChunk
from calcifer.http.anthropic_inbound import message_response, openai_body, reasons
from calcifer.http.anthropic_native import error_bytes, event_frame, message_bytes, native_call
from calcifer.http.anthropic_stream import MessageStream
from calcifer.http.chat import JsonResponse, event_stream, json_response
from calcifer.http.errors import error_headers
from calcifer.http.exchange import Exchange, read_raw_json
from calcifer.http.sse import EventStream, typed_event
from calcifer.http.wire import chat_request


async def messages(request: Request) -> Response | EventStream:
    try:
        payload, raw = await read_raw_json(request)
        chat = _chat(request, payload, raw)
        exchange = Exchange(request, chat, len(raw))
        if chat.stream:
            first, chunks = await exchange.stream()
            native = exchange.outcome.api == ANTHROPIC_MESSAGES
            frames = _native_frames(chunks, exchange) if native else _frames(first, chunks, exchange)
            return event_stream(request, frames, exchange)
        response, priced = await exchange.complete()
        if response.api == ANTHROPIC_MESSAGES:
            return JsonResponse(message_bytes(response, priced.cost), exchange.headers(priced))
        answer = message_response(response.body, priced.usage, priced.cost)
        return json_response(answer, exchange.headers(priced))
    except GatewayError as error:
        return error_response(error)


async def count_tokens(request: Request) -> Response:
    """`/v1/messages/count_tokens`: the client's request forwarded as sent to a provider that speaks
    the Messages API and counts exactly; for any other model, estimated by the gateway's tokenizer
    (`"estimated": true` in the body, `x-calcifer-estimated: true`)."""
    try:
        payload, raw = await read_raw_json(request)
        # this endpoint takes no `max_tokens`; the translation needs one
        chat = _chat(request, payload, raw, translated={**payload, "max_tokens": 1})
        gateway: GatewayService = request.app.state.gateway
        provider, sent = gateway.route(chat)
        headers = {"x-calcifer-provider": provider.name}
        if sent.native is not None and isinstance(provider, ExactTokenCounter):
            return json_response({"input_tokens": await provider.count_tokens(sent)}, headers)
        counter: TokenCounter = request.app.state.token_counter
        tokens = await asyncio.to_thread(counter.count_prompt, sent)  # a long prompt takes a while
        headers["x-calcifer-estimated"] = "true"
        return json_response({"input_tokens": tokens, "estimated": True}, headers)
    except GatewayError as error:
        return error_response(error)


def error_response(error: GatewayError) -> Response:
    """Anthropic's error body (the upstream's own, for its answer to a native call), with the same
    `Retry-After` / `x-should-retry` hints as the OpenAI routes."""
    status, body = error_bytes(error)
    return Response(body, status_code=status, media_type="application/json", headers=error_headers(error))


def _chat(
    request: Request,
    payload: Mapping[str, object],
    raw: bytes,
    translated: Mapping[str, object] | None = None,
) -> ChatRequest:
    """The chat request for a Messages call: its translation for the route's first provider, with the
    client's own call attached. When that provider speaks the Messages API the translation only
    serves a fallback, so what it cannot read is left for the upstream to judge, not refused here."""
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(
            "model: Field required" if model is None else "model: Input should be a valid string",
            param="model",
        )
    gateway: GatewayService = request.app.state.gateway
    provider, target = gateway.first_target(model)
    native = native_call(request, payload, raw)
    try:
        chat = chat_request(openai_body(translated or payload, reasoning=reasons(target)))
    except InvalidRequest:
        if not speaks(provider, native.api, target):
            raise
        body = {"model": model, "messages": []}
        chat = ChatRequest(model, body, stream=payload.get("stream") is True)
    return replace(chat, native=native)


async def _native_frames(chunks: AsyncIterator[StreamChunk], exchange: Exchange) -> AsyncIterator[bytes]:
    outcome = exchange.outcome
    try:
        async for chunk in chunks:
            yield event_frame(chunk, outcome.cost)
    except GatewayError as error:
        yield _error_event(error, exchange)


async def _frames(
    first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], exchange: Exchange
) -> AsyncIterator[bytes]:
    translator = MessageStream(exchange.chat.model)
    outcome = exchange.outcome
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk.data):
                yield typed_event(event)
        for event in translator.finish(outcome.usage, outcome.cost):
            yield typed_event(event)
    except GatewayError as error:
        yield _error_event(error, exchange)


def _error_event(error: GatewayError, exchange: Exchange) -> bytes:
    status, body = error_bytes(error)
    exchange.facts.status = status
    if b"\n" in body:
        body = orjson.dumps(orjson.loads(body))
    return b"event: error\ndata: " + body + b"\n\n"
