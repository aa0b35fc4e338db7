"""Anthropic's Messages API: the I/O shell.

A request from the gateway's `/v1/messages` arrives with the client's own call (`ChatRequest.native`)
and is sent as it came (`anthropic_native.py`), its answer relayed as the upstream's bytes; any other
request is translated from OpenAI's chat-completions shape and back, purely, in `anthropic_wire.py`
(requests, responses, usage, errors) and `anthropic_stream.py` (stream events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping

import orjson

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatRequest, ChatResponse, StreamChunk
from calcifer.providers._http import (
    HttpProvider,
    error_for_status,
    json_object,
    native_payload,
    post_json,
    sse_events,
    transport_errors,
)
from calcifer.providers.anthropic_native import (
    NativeEvents,
    native_headers,
    native_url,
    tag,
)
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import (
    anthropic_error_fields,
    from_anthropic,
    max_output_from_models,
    to_anthropic,
    usage_from_anthropic,
)

_log = logging.getLogger("calcifer.providers.anthropic")

# What `/v1/messages/count_tokens` accepts of a Messages request.
_COUNT_FIELDS = ("model", "system", "messages", "tools", "tool_choice", "output_config")
# 2023-06-01 accepts `temperature`/`top_p`; the 2026-10-21 version rejects them (PROVIDER_FACTS §2).
ANTHROPIC_VERSION = "2023-06-01"
_VERSION = {"anthropic-version": ANTHROPIC_VERSION}
DEFAULT_MAX_OUTPUT = 4096


class AnthropicProvider(HttpProvider):
    """Speaks Anthropic's `/v1/messages`: a client's native call as sent, anything else translated to
    and from OpenAI's chat-completions shape."""

    native_apis = frozenset({ANTHROPIC_MESSAGES})

    def __init__(
        self,
        *,
        models: frozenset[str],
        max_output: Mapping[str, int] | None = None,
        api_key: str | None,
        base_url: str = "https://api.anthropic.com",
        timeout: float = 600.0,
        name: str = "anthropic",
        credential_setting: str = "ANTHROPIC_API_KEY",
        discover_max_output: bool = False,
    ) -> None:
        super().__init__(
            name=name, models=models, api_key=api_key, timeout=timeout, credential_setting=credential_setting
        )
        self._max_output = dict(max_output or {})
        self._discover = discover_max_output
        self._models_url = base_url.rstrip("/") + "/v1/models?limit=1000"
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._count_url = self._url + "/count_tokens"

    def max_tokens_for(self, model: str) -> int:
        """`max_tokens` when the client gives none (Anthropic requires it): the model's maximum output."""
        return self._max_output.get(model, DEFAULT_MAX_OUTPUT)

    def _client_headers(self) -> dict[str, str]:
        # `anthropic-version` goes with each request: a native call may name its own.
        headers = super()._client_headers()
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    async def start(self) -> None:
        if self._pool is None:
            await super().start()
            if self._discover and self.configured:
                try:
                    await self.learn_max_output()
                except ProviderError as error:
                    _log.warning("could not read Anthropic's model limits: %s", error.message)

    async def learn_max_output(self) -> int:
        """Read each model's maximum output from Anthropic's Models API, for the models whose maximum
        was not given; the number of models learned. One page of up to 1000 models."""
        with transport_errors(self.name):
            models = self._client().get(self._models_url, headers=_VERSION, timeout=min(self._timeout, 10.0))
            async with models as response:
                raw = await response.read()
                if response.status != 200:
                    raise self._error(response.status, raw, response.headers)
        learned = {
            model: limit
            for model, limit in max_output_from_models(json_object(raw, self.name)).items()
            if model not in self._max_output
        }
        self._max_output.update(learned)
        return len(learned)

    def _payload(self, request: ChatRequest, stream: bool) -> bytes:
        wire = to_anthropic(request.body, request.model, self.max_tokens_for(request.model), stream)
        return orjson.dumps(wire)

    def _error(
        self, status: int, body: bytes, headers: Mapping[str, str], native: bool = False
    ) -> ProviderError:
        # 529 `overloaded_error` is Anthropic's own status; clients know it as 503.
        error = error_for_status(
            503 if status == 529 else status, body, headers, self.name, anthropic_error_fields
        )
        return tag(error, body) if native and anthropic_error_fields(body) is not None else error

    def _call(self, url: str, request: ChatRequest, stream: bool) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and headers of a call: the client's native call as sent, or the translated one."""
        native = request.native
        if native is None:
            return url, self._payload(request, stream), _VERSION
        headers = native_headers(native, ANTHROPIC_VERSION)
        return native_url(url, native), native_payload(native, request.model), headers

    async def _post(
        self, url: str, payload: bytes, headers: Mapping[str, str] | None = None, native: bool = False
    ) -> bytes:
        error = self._native_error if native else self._error
        raw, _ = await post_json(
            self._client(), url, payload, self.name, error, timeout=self._timeout, headers=headers
        )
        return raw

    def _native_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return self._error(status, body, headers, native=True)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        native = request.native is not None
        raw = await self._post(*self._call(self._url, request, stream=False), native=native)
        message = json_object(raw, self.name)
        if not native:
            return from_anthropic(message, int(time.time()), self.name)
        usage = message.get("usage")
        counted = usage_from_anthropic(usage) if isinstance(usage, dict) else None
        return ChatResponse(message, counted, self.name, ANTHROPIC_MESSAGES, raw)

    async def count_tokens(self, request: ChatRequest) -> int:
        """The prompt's input tokens, counted by Anthropic's `/v1/messages/count_tokens` (free of charge):
        the client's own count request as it made it, else the translated prompt."""
        native = request.native
        if native is None:
            wire = to_anthropic(request.body, request.model, 1, stream=False)
            payload = orjson.dumps({k: wire[k] for k in _COUNT_FIELDS if k in wire})
            raw = await self._post(self._count_url, payload, _VERSION, native=False)
        else:
            raw = await self._post(*self._call(self._count_url, request, stream=False), native=True)
        tokens = json_object(raw, self.name).get("input_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            raise UpstreamUnavailable(f"{self.name} answered count_tokens without input_tokens")
        return tokens

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        native = request.native is not None
        url, payload, headers = self._call(self._url, request, stream=True)
        chunker = AnthropicChunker(int(time.time()), self.name)
        events = NativeEvents(self.name)
        with transport_errors(self.name):
            async with self._client().post(url, data=payload, headers=headers) as response:
                if response.status != 200:
                    raw = await response.read()
                    raise self._error(response.status, raw, response.headers, native)
                async for name, data in sse_events(response.iter_any()):
                    if native:
                        yield events.feed(name, data)
                    else:
                        for chunk in chunker.feed(json_object(data, self.name, "a stream event")):
                            yield chunk
                    if chunker.finished or events.finished:
                        return
        raise UpstreamUnavailable(f"{self.name} ended the stream without message_stop")
