"""Google Vertex AI: Gemini (`generateContent` / `streamGenerateContent?alt=sse`) and Claude
(`rawPredict` / `streamRawPredict` with `anthropic_version: vertex-2023-10-16`), with OAuth tokens from
`google-auth` (`google_tokens`).

`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/
{google|anthropic}/models/{model}:{method}` (`aiplatform.googleapis.com` for the `global` location).
Gemini speaks the Gemini API's wire format (`gemini_wire`); Claude takes Anthropic's Messages body
without `model`, so a client's own `/v1/messages` request keeps its faithful lane. A token the server
refuses (401) is dropped and the request sent once more with a new one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import orjson

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import ANTHROPIC_MESSAGES, EMBEDDINGS, ChatRequest, ChatResponse, StreamChunk
from calcifer.providers._http import HttpProvider, error_for_status, json_object, sse_events, transport_errors
from calcifer.providers.anthropic_native import NativeEvents
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import from_anthropic, to_anthropic, usage_from_anthropic
from calcifer.providers.gemini_errors import gemini_error_fields, gemini_status
from calcifer.providers.gemini_stream import GeminiStream
from calcifer.providers.gemini_wire import from_gemini, to_gemini
from calcifer.providers.google_tokens import GoogleTokens
from calcifer.providers.vertex_embeddings import (
    from_vertex_embeddings,
    is_embedding_model,
    to_vertex_embeddings,
)

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_MAX_OUTPUT = 4096
_MESSAGES = frozenset({ANTHROPIC_MESSAGES})
_EMBEDDINGS = frozenset({EMBEDDINGS})
_NO_APIS: frozenset[str] = frozenset()


def is_claude(model: str) -> bool:
    return model.startswith("claude")


def vertex_base_url(project: str, location: str) -> str:
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/v1/projects/{quote(project, safe='')}/locations/{quote(location, safe='')}"


class VertexProvider(HttpProvider):
    def __init__(
        self,
        *,
        models: frozenset[str],
        tokens: GoogleTokens,
        base_url: str,
        max_output: Mapping[str, int] | None = None,
        timeout: float = 60.0,
        name: str = "vertex",
    ) -> None:
        super().__init__(
            name=name,
            models=models,
            api_key=None,
            timeout=timeout,
            credential_setting="Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS or ADC)",
            key_required=False,
        )
        self._tokens = tokens
        self._base = base_url.rstrip("/") + "/publishers/"
        self._max_output = dict(max_output or {})
        self.native_apis = _MESSAGES | _EMBEDDINGS  # per model: `native_apis_for`

    @property
    def configured(self) -> bool:
        return self._tokens.configured

    def supports(self, model: str) -> bool:
        return model in self.models or model.partition("@")[0] in self.models

    def native_apis_for(self, model: str) -> frozenset[str]:
        if is_embedding_model(model):
            return _EMBEDDINGS
        return _MESSAGES if is_claude(model) else _NO_APIS

    async def aclose(self) -> None:
        await self._tokens.aclose()
        await super().aclose()

    def _call(self, request: ChatRequest, stream: bool) -> tuple[str, bytes]:
        model = request.model
        if is_claude(model):
            native = request.native
            if native is not None and native.api == ANTHROPIC_MESSAGES:
                body = dict(native.body)
            else:
                limit = self._max_output.get(model.partition("@")[0], DEFAULT_MAX_OUTPUT)
                body = to_anthropic(request.body, model, limit, stream=False)
            body = {k: v for k, v in body.items() if k not in ("model", "stream")}
            body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
            if stream:
                body["stream"] = True
            method = ":streamRawPredict" if stream else ":rawPredict"
            return f"{self._base}anthropic/models/{quote(model, safe='@')}{method}", orjson.dumps(body)
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        url = f"{self._base}google/models/{quote(model, safe='')}{method}"
        return url, orjson.dumps(to_gemini(request.body, model))

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProviderError:
        return error_for_status(gemini_status(status, raw), raw, headers, self.name, gemini_error_fields)

    async def _post(self, url: str, payload: bytes) -> bytes:
        """POST with a bearer token, once more with a new token when the server refuses it (401)."""
        for attempt in (1, 2):
            token = await self._tokens.token()
            headers = {"Authorization": f"Bearer {token}"}
            with transport_errors(self.name):
                async with self._client().post(
                    url, data=payload, headers=headers, timeout=self._timeout
                ) as response:
                    raw = await response.read()
            if response.status == 401 and attempt == 1:
                self._tokens.invalidate(token)
                continue
            if response.status != 200:
                raise self._error(response.status, raw, response.headers)
            return raw
        raise AssertionError("unreachable")

    async def complete(self, request: ChatRequest) -> ChatResponse:
        native = request.native
        if native is not None and native.api == EMBEDDINGS:
            url = f"{self._base}google/models/{quote(request.model, safe='')}:predict"
            raw = await self._post(url, orjson.dumps(to_vertex_embeddings(native.body)))
            answer = json_object(raw, self.name)
            vectors, tokens = from_vertex_embeddings(answer, native.body, request.model)
            return ChatResponse(vectors, tokens, self.name, EMBEDDINGS)
        url, payload = self._call(request, stream=False)
        raw = await self._post(url, payload)
        answer = json_object(raw, self.name)
        created = int(time.time())
        if not is_claude(request.model):
            body, usage = from_gemini(answer, request.model, created)
            return ChatResponse(body, usage, self.name)
        if request.native is not None:
            usage_raw = answer.get("usage")
            counted = usage_from_anthropic(usage_raw) if isinstance(usage_raw, dict) else None
            return ChatResponse(answer, counted, self.name, ANTHROPIC_MESSAGES, raw)
        return from_anthropic(answer, created, self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        url, payload = self._call(request, stream=True)
        created = int(time.time())
        claude = is_claude(request.model)
        native = NativeEvents(self.name) if claude and request.native is not None else None
        chunker = AnthropicChunker(created, self.name)
        gemini = GeminiStream(request.model, created)
        for attempt in (1, 2):
            token = await self._tokens.token()
            with transport_errors(self.name):
                async with self._client().post(
                    url, data=payload, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    if response.status != 200:
                        raw = await response.read()
                        if response.status == 401 and attempt == 1:
                            self._tokens.invalidate(token)
                            continue
                        raise self._error(response.status, raw, response.headers)
                    async for name, data in sse_events(response.iter_any()):
                        if native is not None:
                            yield native.feed(name, data)
                            continue
                        event = json_object(data, self.name, "a stream event")
                        for chunk in chunker.feed(event) if claude else gemini.feed(event):
                            yield chunk
            break
        if not claude:
            closing = gemini.usage_chunk()
            if closing is not None:
                yield closing
        finished = native.finished if native is not None else chunker.finished if claude else gemini.finished
        if not finished:
            raise UpstreamUnavailable(f"{self.name} ended the stream before it was complete")
