"""Anthropic's Messages API behind the OpenAI chat-completions shape: the I/O shell.

The translation itself is pure and lives in `anthropic_wire.py` (requests, responses, usage, errors)
and `anthropic_stream.py` (stream events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping

import orjson

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import ChatRequest, ChatResponse, StreamChunk
from calcifer.providers._http import (
    HttpProvider,
    error_for_status,
    json_object,
    sse_events,
    transport_errors,
)
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import (
    anthropic_error_fields,
    from_anthropic,
    max_output_from_models,
    to_anthropic,
)

_log = logging.getLogger("calcifer.providers.anthropic")

# What `/v1/messages/count_tokens` accepts of a Messages request.
_COUNT_FIELDS = ("model", "system", "messages", "tools", "tool_choice", "output_config")
# 2023-06-01 accepts `temperature`/`top_p`; the 2026-10-21 version rejects them (PROVIDER_FACTS §2).
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_OUTPUT = 4096


class AnthropicProvider(HttpProvider):
    """Speaks Anthropic's `/v1/messages`, translating to and from OpenAI's chat-completions shape."""

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
        headers = {**super()._client_headers(), "anthropic-version": ANTHROPIC_VERSION}
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
            async with self._client().get(self._models_url, timeout=min(self._timeout, 10.0)) as response:
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

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        # 529 `overloaded_error` is Anthropic's own status; clients know it as 503.
        return error_for_status(
            503 if status == 529 else status, body, headers, self.name, anthropic_error_fields
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        payload = self._payload(request, stream=False)
        with transport_errors(self.name):
            async with self._client().post(self._url, data=payload, timeout=self._timeout) as response:
                raw = await response.read()
                if response.status != 200:
                    raise self._error(response.status, raw, response.headers)
        message = json_object(raw, self.name)
        return from_anthropic(message, int(time.time()), self.name)

    async def count_tokens(self, request: ChatRequest) -> int:
        """The prompt's input tokens, counted by Anthropic's `/v1/messages/count_tokens` (free of charge)."""
        wire = to_anthropic(request.body, request.model, 1, stream=False)
        payload = orjson.dumps({k: wire[k] for k in _COUNT_FIELDS if k in wire})
        with transport_errors(self.name):
            async with self._client().post(self._count_url, data=payload, timeout=self._timeout) as response:
                raw = await response.read()
                if response.status != 200:
                    raise self._error(response.status, raw, response.headers)
        tokens = json_object(raw, self.name).get("input_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            raise UpstreamUnavailable(f"{self.name} answered count_tokens without input_tokens")
        return tokens

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        payload = self._payload(request, stream=True)
        chunker = AnthropicChunker(int(time.time()), self.name)
        with transport_errors(self.name):
            async with self._client().post(self._url, data=payload) as response:
                if response.status != 200:
                    raw = await response.read()
                    raise self._error(response.status, raw, response.headers)
                async for _event, data in sse_events(response.iter_any()):
                    for chunk in chunker.feed(json_object(data, self.name, "a stream event")):
                        yield chunk
                    if chunker.finished:
                        return
        raise UpstreamUnavailable(f"{self.name} ended the stream without message_stop")
