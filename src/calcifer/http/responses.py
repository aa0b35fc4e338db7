"""OpenAI's Responses API (`/v1/responses`) for every routable model.

A request goes through `Exchange` like a chat completion (keys, limits, budgets, routing, fallbacks,
cooldowns, the cache, the ledger). It carries the client's own request as its native call: OpenAI and
Azure deployments are sent it as is and their answer is relayed (with `usage.cost` added); every other
provider gets its chat-completions translation (`responses_inbound`) and the answer is built back into
a response object or the Responses event stream (`responses_outbound`, `responses_stream`).

Responses the gateway made (`store`, the default) are kept in its database (`ResponseStore`) so that
`previous_response_id` continues them and `GET`/`DELETE /v1/responses/{id}` and `input_items` answer
for them; a response OpenAI made is kept by OpenAI, and those requests are passed on to it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.gateway import GatewayService
from calcifer.domain.ports import NativeResources, ResponseStore
from calcifer.domain.types import OPENAI_RESPONSES, JSONObject, NativeCall, StoredResponse, StreamChunk
from calcifer.http.asgi import Route
from calcifer.http.auth import IDENTITY_KEY, Identity
from calcifer.http.chat import event_stream, json_response
from calcifer.http.exchange import Exchange, read_json
from calcifer.http.responses_inbound import Translated, input_items, new_id, translate
from calcifer.http.responses_outbound import add_cost, from_completion
from calcifer.http.responses_stream import ResponseEvents, error_event, failure
from calcifer.http.sse import EventStream, typed_event
from calcifer.http.wire import chat_request

_log = logging.getLogger("calcifer")
_MAX_ITEMS = 100  # the most input items one page lists


class ResponseNotFound(GatewayError):
    kind = "invalid_request_error"
    http_status = 404


async def create_response(request: Request) -> Response | EventStream:
    payload, size = await read_json(request)
    state = request.app.state
    gateway: GatewayService = state.gateway
    store: ResponseStore | None = getattr(state, "responses", None)
    native_body: Mapping[str, object] = payload
    history: list[JSONObject] = []
    previous = payload.get("previous_response_id")
    if isinstance(previous, str) and previous and store is not None:
        chain = await store.chain(previous, datetime.now(UTC))
        if chain and _owned(request, chain[-1]):
            for earlier in chain:
                history += [*earlier.input_items, *_output(earlier)]
            # A continued response is sent in full: an upstream that did not make it cannot look it up.
            native_body = {k: v for k, v in payload.items() if k != "previous_response_id"}
            native_body["input"] = [_without_id(item) for item in [*history, *input_items(payload)]]
    translated = translate(payload, history)
    chat = replace(chat_request(translated.body), native=NativeCall(OPENAI_RESPONSES, native_body))
    if translated.previous_id and not history:
        # Not kept here: only an upstream with its own store (OpenAI) can continue it.
        provider, _ = gateway.route(chat)
        if OPENAI_RESPONSES not in getattr(provider, "native_apis", ()):
            message = f"Previous response with id '{translated.previous_id}' not found."
            raise InvalidRequest(message, param="previous_response_id")
    exchange = Exchange(request, chat, size)
    if translated.stream:
        _, chunks = await exchange.stream()  # the relay yields the first chunk too
        if exchange.outcome.api == OPENAI_RESPONSES:
            return event_stream(request, _native_frames(chunks, exchange), exchange)
        made = _Made(request, store, translated)
        return event_stream(request, _translated_frames(chunks, exchange, made), exchange)
    response, priced = await exchange.complete()
    if response.api == OPENAI_RESPONSES:
        add_cost(response.body, priced.usage, priced.cost)
        return json_response(response.body, exchange.headers(priced))
    made = _Made(request, store, translated)
    body = from_completion(translated.echo(), made.id, response.body, priced.usage, priced.cost)
    await made.keep(body, response.provider)
    return json_response(body, exchange.headers(priced))


class _Made:
    """A response the gateway makes itself (for a translated provider): its id, and keeping it."""

    def __init__(self, request: Request, store: ResponseStore | None, translated: Translated) -> None:
        self.id = new_id("resp")
        self._store = store if translated.store else None
        self.translated = translated
        self._retention = request.app.state.settings.responses_retention
        self._key_id = _key_id(request)

    async def keep(self, body: JSONObject, provider: str) -> None:
        if self._store is None:
            return
        now = datetime.now(UTC)
        stored = StoredResponse(
            id=self.id,
            created_at=now,
            expires_at=now + timedelta(seconds=self._retention),
            key_id=self._key_id,
            model=str(body.get("model") or ""),
            provider=provider,
            previous_id=self.translated.previous_id,
            input_items=self.translated.input,
            body=body,
        )
        try:
            await self._store.put(stored)
        except Exception as error:  # the answer was made and paid for: it is sent, only not kept
            _log.error(
                "responses: could not store %s (%s); it cannot be retrieved", self.id, type(error).__name__
            )


async def _translated_frames(
    chunks: AsyncIterator[StreamChunk], exchange: Exchange, made: _Made
) -> AsyncIterator[bytes]:
    events = ResponseEvents(made.translated.echo(), made.id)
    outcome = exchange.outcome
    try:
        async for chunk in chunks:
            for data in events.feed(chunk.data):
                yield data
        frames, response = events.finish(outcome.usage, outcome.cost)
        await made.keep(response, outcome.provider)
        for data in frames:
            yield data
    except GatewayError as error:
        yield events.fail(error, outcome.usage, outcome.cost)


async def _native_frames(chunks: AsyncIterator[StreamChunk], exchange: Exchange) -> AsyncIterator[bytes]:
    """The upstream's own events, as it sent them; the terminal one with `usage.cost` added."""
    outcome = exchange.outcome
    response: object = None  # the latest response object the upstream sent
    sequence = -1
    try:
        async for chunk in chunks:
            data = chunk.data
            number = data.get("sequence_number")
            sequence = number if isinstance(number, int) else sequence + 1
            if "response" in data:
                response = data["response"]
            if chunk.usage is not None:  # the terminal event
                add_cost(response, None, outcome.cost)
                yield typed_event(data)
            else:
                yield chunk.raw if chunk.raw is not None else typed_event(data)
    except GatewayError as error:
        if not isinstance(response, dict):
            yield typed_event(error_event(error, sequence + 1))
            return
        failed = {**response, "status": "failed", "error": failure(error)}
        yield typed_event({"type": "response.failed", "sequence_number": sequence + 1, "response": failed})


async def get_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    stored = await _stored(request, response_id)
    if stored is not None:
        return json_response(stored.body, {})
    return await _from_upstream(request, "GET", f"responses/{response_id}")


async def delete_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    stored = await _stored(request, response_id)
    if stored is not None:
        store: ResponseStore = request.app.state.responses
        await store.delete(response_id)
        return json_response({"id": response_id, "object": "response", "deleted": True}, {})
    return await _from_upstream(request, "DELETE", f"responses/{response_id}")


async def list_input_items(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    stored = await _stored(request, response_id)
    if stored is None:
        return await _from_upstream(request, "GET", f"responses/{response_id}/input_items")
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    raw_limit = query.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_ITEMS:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {_MAX_ITEMS}.", param="limit")
    items = list(stored.input_items if order == "asc" else reversed(stored.input_items))
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[: int(raw_limit)]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > len(page),
    }
    return json_response(body, {})


async def _stored(request: Request, response_id: str) -> StoredResponse | None:
    store: ResponseStore | None = getattr(request.app.state, "responses", None)
    if store is None:
        return None
    stored = await store.get(response_id, datetime.now(UTC))
    return stored if stored is not None and _owned(request, stored) else None


async def _from_upstream(request: Request, method: str, path: str) -> Response:
    """A response the gateway did not make: asked of each provider that keeps Responses (OpenAI's own
    store), the first that knows it answers as it answered."""
    gateway: GatewayService = request.app.state.gateway
    query = request.url.query
    for provider in gateway.registry.providers.values():
        if OPENAI_RESPONSES not in getattr(provider, "native_apis", ()):
            continue
        if not isinstance(provider, NativeResources):
            continue
        if not getattr(provider, "configured", True):
            continue
        status, kind, raw = await provider.native_request(method, path, query)
        if status != 404:
            return Response(raw, status_code=status, media_type=kind.split(";")[0] or "application/json")
    response_id = request.path_params["response_id"]
    raise ResponseNotFound(f"Response with id '{response_id}' not found.", param="response_id")


def _key_id(request: Request) -> str | None:
    identity: Identity | None = request.scope.get(IDENTITY_KEY)
    return identity.key.id if identity is not None and identity.key is not None else None


def _owned(request: Request, stored: StoredResponse) -> bool:
    """Whether the caller may see a stored response: the master key (or anyone when keys are off), or
    the key that made it."""
    return bool(request.scope.get("calcifer.is_master")) or stored.key_id == _key_id(request)


def _output(stored: StoredResponse) -> list[JSONObject]:
    output = stored.body.get("output") if stored.body is not None else None
    return [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []


def _without_id(item: JSONObject) -> JSONObject:
    return {k: v for k, v in item.items() if k != "id"}


def response_routes() -> list[Route]:
    return [
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    ]
