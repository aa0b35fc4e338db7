"""`POST /v1/embeddings` in OpenAI's shape, for every provider with an embeddings API.

The request goes through the same exchange as chat (keys, limits, budgets, routing and fallbacks, the
cache, the ledger), as a native call that no provider may translate into a chat request: a model whose
provider has no embeddings API gets a 400. OpenAI-shaped upstreams get the client's body (only `model`
renamed) and their answer is relayed; others translate. `usage.cost` (input tokens only) is added. An
answer of float vectors to a client that asked for `encoding_format: base64` is encoded as OpenAI does
(little-endian float32, base64).
"""

from __future__ import annotations

import base64
import struct

from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.errors import ApiNotOffered, InvalidRequest
from calcifer.domain.ports import speaks
from calcifer.domain.types import EMBEDDINGS, ChatRequest, JSONObject, NativeCall
from calcifer.http.chat import json_response
from calcifer.http.exchange import Exchange, read_raw_json
from calcifer.http.wire import money

_MAX_INPUTS = 2048


def embedding_request(body: JSONObject) -> ChatRequest:
    """Validate an embeddings body as OpenAI does; every other field passes through untouched."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    _check_input(body.get("input"))
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and not (
        _is_int(dimensions) and isinstance(dimensions, int) and dimensions > 0
    ):
        raise InvalidRequest("'dimensions' must be an integer of at least 1.", param="dimensions")
    native = NativeCall(EMBEDDINGS, body, translatable=False)
    # An embedding has no output: one token of it bounds what a budget must reserve beyond the input.
    return ChatRequest(model=model, body=body, max_output_tokens=1, native=native)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_input(value: object) -> None:
    problem = "'input' must be a non-empty string, an array of strings, or token ids (integers or arrays)."
    if isinstance(value, str):
        if not value:
            raise InvalidRequest(problem, param="input")
        return
    if not isinstance(value, list) or not value or len(value) > _MAX_INPUTS:
        raise InvalidRequest(problem + f" At most {_MAX_INPUTS} inputs.", param="input")
    if all(isinstance(v, str) and v for v in value) or all(_is_int(v) for v in value):
        return
    if all(isinstance(v, list) and v and all(_is_int(t) for t in v) for v in value):
        return
    raise InvalidRequest(problem, param="input")


def as_base64(body: JSONObject) -> None:
    """Encode each float vector of an answer in place as OpenAI's base64 (little-endian float32)."""
    data = body.get("data")
    for item in data if isinstance(data, list) else ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            item["embedding"] = base64.b64encode(packed).decode("ascii")


async def embeddings(request: Request) -> Response:
    body, raw = await read_raw_json(request)
    call = embedding_request(body)
    provider, target = request.app.state.gateway.first_target(call.model)
    if not speaks(provider, EMBEDDINGS, target):
        raise ApiNotOffered(f"'{call.model}' is served by {provider.name!r}, which has no embeddings API.")
    exchange = Exchange(request, call, len(raw))
    response, priced = await exchange.complete()
    answer = response.body
    if body.get("encoding_format") == "base64":
        as_base64(answer)
    counted = priced.usage
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        answer["usage"] = usage = {}
    if counted is not None:  # the upstream's counts, completed where it left some out
        usage.setdefault("prompt_tokens", counted.prompt_tokens)
        usage.setdefault("total_tokens", counted.prompt_tokens)
        if counted.estimated:
            usage["estimated"] = True
    usage["cost"] = money(priced.cost)
    return json_response(answer, exchange.headers(priced))
