"""Google Gemini (Developer API): `generateContent` and `streamGenerateContent?alt=sse`.

The key travels in the `x-goog-api-key` header, never in the URL. Translation is in `gemini_wire`
and `gemini_stream`; this module is the I/O shell.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import orjson

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import EMBEDDINGS, ChatRequest, ChatResponse, StreamChunk
from calcifer.providers._http import (
    HttpProvider,
    error_for_status,
    json_object,
    sse_events,
    transport_errors,
)
from calcifer.providers.gemini_embeddings import from_gemini_embeddings, to_gemini_embeddings
from calcifer.providers.gemini_errors import gemini_error_fields, gemini_status, retry_delay
from calcifer.providers.gemini_stream import GeminiStream
from calcifer.providers.gemini_wire import from_gemini, to_gemini

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"


class GeminiProvider(HttpProvider):
    """Speaks Gemini's REST API, translating to and from OpenAI's chat-completions shape."""

    def __init__(
        self,
        *,
        models: frozenset[str],
        api_key: str | None,
        base_url: str = GEMINI_BASE_URL,
        timeout: float = 60.0,
        name: str = "gemini",
        credential_setting: str = "GEMINI_API_KEY",
        api_version: str = "v1beta",
    ) -> None:
        super().__init__(
            name=name, models=models, api_key=api_key, timeout=timeout, credential_setting=credential_setting
        )
        base = base_url.rstrip("/")
        if not re.search(r"/v1(alpha|beta)?\d*$", base):  # a base URL may already name the version
            base = f"{base}/{api_version}"
        self._base = f"{base}/models/"
        self.native_apis = frozenset({EMBEDDINGS})  # `/v1/embeddings`, through `batchEmbedContents`

    def _client_headers(self) -> dict[str, str]:
        headers = super()._client_headers()
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        return headers

    def _url(self, model: str, method: str) -> str:
        return self._base + quote(model, safe="-._~") + method

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProviderError:
        delay = retry_delay(raw)
        if delay is not None and "retry-after" not in headers:
            headers = {**headers, "retry-after": delay}
        return error_for_status(gemini_status(status, raw), raw, headers, self.name, gemini_error_fields)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.native is not None and request.native.api == EMBEDDINGS:
            wanted = request.native.body
            payload = orjson.dumps(to_gemini_embeddings(wanted, request.model))
            answer = json_object(
                await self._post(self._url(request.model, ":batchEmbedContents"), payload), self.name
            )
            vectors, counted = from_gemini_embeddings(answer, wanted, request.model)
            return ChatResponse(vectors, counted, self.name, EMBEDDINGS)
        payload = orjson.dumps(to_gemini(request.body, request.model))
        parsed = json_object(
            await self._post(self._url(request.model, ":generateContent"), payload), self.name
        )
        body, usage = from_gemini(parsed, request.model, int(time.time()))
        return ChatResponse(body=body, usage=usage, provider=self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        payload = orjson.dumps(to_gemini(request.body, request.model))
        url = self._url(request.model, ":streamGenerateContent?alt=sse")
        translator = GeminiStream(request.model, int(time.time()))
        with transport_errors(self.name):
            async with self._client().post(url, data=payload) as response:
                if response.status != 200:
                    raw = await response.read()
                    raise self._error(response.status, raw, response.headers)
                async for _event, data in sse_events(response.iter_any()):
                    event = json_object(data, self.name, "a stream event")
                    error = event.get("error")
                    if isinstance(error, Mapping):
                        raise UpstreamUnavailable(f"{self.name} stream failed: {error.get('message')}")
                    for chunk in translator.feed(event):
                        yield chunk
        closing = translator.usage_chunk()
        if closing is not None:
            yield closing
        if not translator.finished:
            raise UpstreamUnavailable(f"{self.name} ended the stream without a finishReason")
