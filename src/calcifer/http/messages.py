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

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import ExactTokenCounter
from calcifer.domain.types import StreamChunk
from calcifer.http.anthropic_inbound import anthropic_error, message_response, openai_body, sse_frame
from calcifer.http.anthropic_stream import MessageStream
from calcifer.http.chat import event_stream, json_response
from calcifer.http.errors import error_headers
from calcifer.http.exchange import Exchange, read_json
from calcifer.http.sse import EventStream
from calcifer.http.wire import chat_request

# The provider name whose adapter understands Anthropic-only hints (`cache_control`, `top_k`).
ANTHROPIC_PROVIDER = "anthropic"


async def messages(request: Request) -> Response | EventStream:
    try:
        payload, size = await read_json(request)
        gateway: GatewayService = request.app.state.gateway
        body = openai_body(payload, anthropic_upstream=_to_anthropic(gateway, payload.get("model")))
        exchange = Exchange(request, chat_request(body), size)
        if exchange.chat.stream:
            first, chunks = await exchange.stream()
            return event_stream(request, _frames(first, chunks, exchange), exchange)
        response, priced = await exchange.complete()
        answer = message_response(response.body, priced.usage, priced.cost)
        return json_response(answer, exchange.headers(priced))
    except GatewayError as error:
        return error_response(error)


async def count_tokens(request: Request) -> Response:
    """`/v1/messages/count_tokens`: answered for models whose provider can count exactly."""
    try:
        payload, _ = await read_json(request)
        gateway: GatewayService = request.app.state.gateway
        payload = {"max_tokens": 1, **payload}  # this endpoint takes no `max_tokens`
        body = openai_body(payload, anthropic_upstream=_to_anthropic(gateway, payload.get("model")))
        provider, chat = gateway.route(chat_request(body))
        if not isinstance(provider, ExactTokenCounter):
            message = f"Token counting is not available for the model '{chat.model}' ({provider.name})."
            raise InvalidRequest(message, param="model")
        tokens = await provider.count_tokens(chat)
        return json_response({"input_tokens": tokens}, {"x-calcifer-provider": provider.name})
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
    first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], exchange: Exchange
) -> AsyncIterator[bytes]:
    translator = MessageStream(exchange.chat.model)
    outcome = exchange.outcome
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk.data):
                yield sse_frame(event)
        for event in translator.finish(outcome.usage, outcome.cost):
            yield sse_frame(event)
    except GatewayError as error:
        status, body = anthropic_error(error)
        exchange.facts.status = status
        yield sse_frame(body)
