"""Anthropic's `/v1/messages`, for any routable model: the official `anthropic` SDK works unchanged.

The request is translated into the gateway's OpenAI shape, served by the same `GatewayService` as
`/v1/chat/completions`, and the answer translated back, with `usage.cost` (USD) added. Errors use
Anthropic's shape, before and during a stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError
from calcifer.domain.gateway import GatewayService
from calcifer.domain.types import ChatRequest, StreamChunk, StreamOutcome
from calcifer.http.anthropic_inbound import anthropic_error, message_response, openai_body, sse_frame
from calcifer.http.anthropic_stream import MessageStream
from calcifer.http.chat import _first, _relay, cost_headers, json_response, note, parse
from calcifer.http.errors import error_headers
from calcifer.http.middleware import LOG_KEY
from calcifer.http.sse import EventStream
from calcifer.http.wire import chat_request

# The provider name whose adapter understands Anthropic-only hints (`cache_control`, `top_k`).
ANTHROPIC_PROVIDER = "anthropic"


async def messages(request: Request) -> Response | EventStream:
    try:
        gateway, payload = await parse(request)
        body = openai_body(payload, anthropic_upstream=_to_anthropic(gateway, payload.get("model")))
        chat = chat_request(body)
        note(request, chat)
        if chat.stream:
            outcome = StreamOutcome()
            chunks = gateway.stream(chat, outcome)
            first = await _first(chunks)
            headers = {"x-calcifer-provider": outcome.provider, "x-calcifer-model": chat.model}
            frames = _frames(first, chunks, chat, outcome, request)
            return EventStream(
                frames, headers=headers, write_timeout=request.app.state.settings.write_timeout
            )
        response, priced = await gateway.complete(chat)
        note(request, chat, priced)
        return json_response(message_response(response.body, priced.usage, priced.cost), cost_headers(priced))
    except GatewayError as error:
        return error_response(error)


def error_response(error: GatewayError) -> Response:
    """Anthropic's error body, with the same `Retry-After` / `x-should-retry` hints as the OpenAI routes."""
    status, body = anthropic_error(error)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=error_headers(error)
    )


def _to_anthropic(gateway: GatewayService, model: object) -> bool:
    if not isinstance(model, str):
        return False  # `openai_body` reports the bad field
    provider, _ = gateway.registry.resolve(model)
    return provider.name == ANTHROPIC_PROVIDER


async def _frames(
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    chat: ChatRequest,
    outcome: StreamOutcome,
    request: Request,
) -> AsyncIterator[bytes]:
    translator = MessageStream(chat.model)
    try:
        async for chunk in _relay(first, chunks, outcome, request, chat):
            for event in translator.feed(chunk.data):
                yield sse_frame(event)
        for event in translator.finish(outcome.usage, outcome.cost):
            yield sse_frame(event)
    except GatewayError as error:
        outcome.error = error.message
        status, body = anthropic_error(error)
        request.scope[LOG_KEY]["status"] = status
        yield sse_frame(body)
