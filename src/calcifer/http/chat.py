"""Chat endpoints: OpenAI's `/v1/chat/completions` and the original `/v1/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamChunk, Usage
from calcifer.http import original
from calcifer.http.errors import error_payload
from calcifer.http.exchange import Exchange, read_json
from calcifer.http.sse import DONE, EventStream, event
from calcifer.http.wire import chat_request, money


def usage_json(usage: Usage) -> dict[str, object]:
    """OpenAI's usage object for a domain `Usage`."""
    body: dict[str, object] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens or usage.cache_write_tokens:
        body["prompt_tokens_details"] = {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        }
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


class JsonResponse(Response):
    """A JSON answer whose headers are encoded directly: Starlette's general `init_headers` cost more
    than the rest of a proxied response's own work in the benchmark's profile."""

    media_type = "application/json"

    def __init__(self, content: bytes, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.body = content
        self.background = None
        raw = [(b"content-length", b"%d" % len(content)), (b"content-type", b"application/json")]
        raw += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        self.raw_headers = raw


def json_response(body: object, headers: dict[str, str]) -> Response:
    return JsonResponse(orjson.dumps(body), headers)


def event_stream(request: Request, frames: AsyncIterator[bytes], exchange: Exchange) -> EventStream:
    return EventStream(
        frames,
        headers=exchange.headers(),
        write_timeout=request.app.state.settings.write_timeout,
        on_close=exchange.aclose,  # a client gone mid-stream is settled before its ledger row is written
    )


async def chat_completions(request: Request) -> Response | EventStream:
    body, size = await read_json(request)
    chat = chat_request(body)
    exchange = Exchange(request, chat, size)
    if chat.stream:
        first, chunks = await exchange.stream()
        return event_stream(request, _openai_frames(first, chunks, exchange), exchange)
    response, priced = await exchange.complete()
    usage = response.body.get("usage")
    if priced.usage is not None and priced.usage.estimated:
        response.body["usage"] = usage = usage_json(priced.usage) | {"estimated": True}
    if isinstance(usage, dict):
        usage["cost"] = money(priced.cost)
    return json_response(response.body, exchange.headers(priced))


async def completions(request: Request) -> Response | EventStream:
    """The original API: `{model, messages}` in, `{content, usage: {cost}}` out (or OpenAI's legacy
    `prompt` form, answered in its `text_completion` shape)."""
    body, size = await read_json(request)
    legacy = "messages" not in body and "prompt" in body
    chat = chat_request(original.legacy_to_chat(body) if legacy else body)
    exchange = Exchange(request, chat, size)
    if chat.stream:
        first, chunks = await exchange.stream()
        return event_stream(request, _original_frames(first, chunks, exchange, legacy), exchange)
    response, priced = await exchange.complete()
    shape = original.legacy_response if legacy else original.response
    return json_response(shape(response.body, priced), exchange.headers(priced))


async def _openai_frames(
    first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], exchange: Exchange
) -> AsyncIterator[bytes]:
    include_usage = exchange.chat.include_usage
    outcome = exchange.outcome
    sent_usage = False
    last: dict[str, object] = {}
    try:
        async for chunk in chunks:
            data = last = chunk.data
            if chunk.usage is not None and not data.get("choices"):
                if include_usage:
                    usage = data.get("usage")
                    if isinstance(usage, dict):
                        usage["cost"] = money(outcome.cost)
                    sent_usage = True
                    yield event(data)
                continue
            yield _frame(chunk, include_usage)
        if include_usage and not sent_usage and outcome.usage is not None:
            # The upstream reported no usage: send the gateway's estimate, marked as such.
            usage = usage_json(outcome.usage) | {"estimated": True, "cost": money(outcome.cost)}
            final: dict[str, object] = {k: last[k] for k in ("id", "object", "created", "model") if k in last}
            yield event(final | {"choices": [], "usage": usage})
        yield DONE
    except GatewayError as error:
        yield event(error_payload(error))


_NULL_USAGE = b',"usage":null}'  # how OpenAI ends every chunk but the last when asked for usage


def _frame(chunk: StreamChunk, include_usage: bool) -> bytes:
    """A chunk's SSE frame: the upstream's own bytes when it sent them, else the chunk encoded. The
    gateway always asks OpenAI-shaped upstreams for usage, which then put `"usage": null` on every
    chunk; a client that did not ask for usage gets its chunks without it, as from OpenAI directly."""
    raw = chunk.raw
    if raw is not None:
        if include_usage or b'"usage"' not in raw:
            return b"data: " + raw + b"\n\n"
        if raw.endswith(_NULL_USAGE):  # the top-level object's last member: safe to cut as bytes
            return b"data: " + raw[: -len(_NULL_USAGE)] + b"}\n\n"
    data = chunk.data
    if not include_usage and "usage" in data and data["usage"] is None:
        del data["usage"]
    return event(data)


async def _original_frames(
    first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], exchange: Exchange, legacy: bool
) -> AsyncIterator[bytes]:
    finish: str | None = None
    outcome = exchange.outcome
    try:
        async for chunk in chunks:
            delta, reason = original.delta_of(chunk.data)
            finish = reason or finish
            if delta:
                yield event(original.legacy_chunk(chunk.data, delta, None) if legacy else {"content": delta})
        if legacy:
            yield event(original.legacy_final(exchange.chat.model, finish, outcome.usage, outcome.cost))
        else:
            usage = original.usage_json(outcome.usage, outcome.cost)
            yield event({"content": "", "finish_reason": finish, "usage": usage})
        yield DONE
    except GatewayError as error:
        yield event(error_payload(error))
