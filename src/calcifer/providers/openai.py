"""OpenAI (and any server that speaks its chat-completions API): the body passes through untouched.

With `responses=True` (OpenAI itself, Azure) it also speaks the Responses API natively
(`openai_responses`): a client's `/v1/responses` request goes to `{base_url}/responses` as sent.
Every one also serves `/v1/embeddings` (`EMBEDDINGS`): the client's body goes to `{base_url}/embeddings`
with only `model` renamed, and the answer comes back as sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.types import (
    EMBEDDINGS,
    OPENAI_RESPONSES,
    ChatRequest,
    ChatResponse,
    JSONObject,
    StreamChunk,
    Usage,
)
from calcifer.providers import openai_responses
from calcifer.providers._http import (
    HttpProvider,
    json_object,
    native_payload,
    openai_error_fields,
    sse_events,
    transport_errors,
)
from calcifer.providers.gemini_embeddings import input_usage

_DONE = b"[DONE]"


def usage_from_openai(raw: object) -> Usage | None:
    """OpenAI's usage object as domain `Usage` (cached ⊂ prompt, reasoning ⊂ completion)."""
    if not isinstance(raw, dict):  # parsed JSON: a dict, checked without the slower ABC test
        return None
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    pd = prompt_details if isinstance(prompt_details, dict) else {}
    cd = completion_details if isinstance(completion_details, dict) else {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=_int(pd.get("cached_tokens")),
        cache_write_tokens=_int(pd.get("cache_write_tokens")),
        reasoning_tokens=_int(cd.get("reasoning_tokens")),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def upstream_body(request: ChatRequest, model: str | None = None) -> JSONObject:
    """The client's body as the upstream must get it: only the model (after routing) and, for streams,
    `stream_options.include_usage` (so every stream is priced) are changed."""
    body = dict(request.body)
    body["model"] = model or request.model
    if request.stream:
        options = body.get("stream_options")
        merged = dict(options) if isinstance(options, Mapping) else {}
        merged["include_usage"] = True
        body["stream_options"] = merged
    return body


class OpenAIProvider(HttpProvider):
    """Speaks OpenAI's `/chat/completions`; also serves every OpenAI-compatible server."""

    def __init__(
        self,
        *,
        models: frozenset[str],
        api_key: str | None,
        base_url: str = "https://api.openai.com/v1",
        timeout: float = 60.0,
        name: str = "openai",
        credential_setting: str = "OPENAI_API_KEY",
        key_required: bool = True,
        headers: Mapping[str, str] | None = None,
        responses: bool = False,
        any_model: bool = False,
        embeddings_dialect: str = "openai",
        model_prefix: str = "",
    ) -> None:
        super().__init__(
            name=name,
            models=models,
            api_key=api_key,
            timeout=timeout,
            credential_setting=credential_setting,
            key_required=key_required,
        )
        self._base = base_url.rstrip("/")
        self._url = self._base + "/chat/completions"
        self._headers = dict(headers or {})
        self._any_model = any_model  # a local server: whatever model it has loaded
        self._voyage = embeddings_dialect == "voyage"  # Voyage AI's names for the embeddings fields
        self._prefix = model_prefix  # put before a bare model id on the wire (Fireworks' account path)
        # The APIs sent natively (`NativeApis`): the Responses API where the upstream has it.
        self.native_apis = frozenset({EMBEDDINGS, OPENAI_RESPONSES} if responses else {EMBEDDINGS})

    def supports(self, model: str) -> bool:
        return self._any_model or model in self.models

    def _wire_model(self, model: str) -> str:
        return self._prefix + model if self._prefix and "/" not in model else model

    def _client_headers(self) -> dict[str, str]:
        return {**super()._client_headers(), **self._headers, **self._auth_headers()}

    # Hooks for OpenAI-shaped services that differ only in URL, auth, error bodies or extra chunks
    # (Azure OpenAI); the defaults are OpenAI's own behaviour.

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _endpoint(self, request: ChatRequest) -> str:
        return self._url

    def _api_url(self, path: str) -> str:
        """The URL of another path of the upstream's API (`responses`, `responses/{id}`)."""
        return f"{self._base}/{path}"

    def _embeddings_url(self, request: ChatRequest) -> str:
        return self._api_url("embeddings")

    def _native_model(self, request: ChatRequest) -> str:
        """The `model` a native request names upstream."""
        return request.model

    def _native_payload(self, request: ChatRequest) -> bytes:
        assert request.native is not None
        return native_payload(request.native, self._native_model(request))

    def _relayed(self, chunk: JSONObject) -> bool:
        """Whether a stream chunk goes to the client (a subclass may absorb vendor-only chunks)."""
        return True

    async def complete(self, request: ChatRequest) -> ChatResponse:
        native = request.native
        if native is not None and native.api == EMBEDDINGS:
            wanted = voyage_body(native.body) if self._voyage else native.body
            payload = orjson.dumps({**wanted, "model": self._wire_model(request.model)})
            body = json_object(await self._post(self._embeddings_url(request), payload), self.name)
            usage = input_usage(native.body, body.get("usage"))
            return ChatResponse(body, usage, self.name, EMBEDDINGS)
        if native is not None:
            return await self._complete_native(request)
        body = upstream_body(request, self._wire_model(request.model))
        raw = await self._post(self._endpoint(request), orjson.dumps(body))
        body = json_object(raw, self.name)
        return ChatResponse(body=body, usage=usage_from_openai(body.get("usage")), provider=self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        if request.native is not None:
            async for event in self._stream_native(request):
                yield event
            return
        payload = orjson.dumps(upstream_body(request, self._wire_model(request.model)))
        with transport_errors(self.name):
            async with self._client().post(self._endpoint(request), data=payload) as response:
                if response.status != 200:
                    raw = await response.read()
                    raise self._error(response.status, raw, response.headers)
                async for _event, data in sse_events(response.iter_any()):
                    if data == _DONE:
                        return
                    chunk = _parse_chunk(data, self.name)
                    if self._relayed(chunk):
                        yield StreamChunk(chunk, usage_from_openai(chunk.get("usage")), _relayable(data))
        raise UpstreamUnavailable(f"{self.name} ended the stream without [DONE]")

    async def _complete_native(self, request: ChatRequest) -> ChatResponse:
        payload = self._native_payload(request)
        raw = await self._post(self._api_url("responses"), payload)
        body = json_object(raw, self.name)
        usage = openai_responses.usage_from_responses(body.get("usage"))
        return ChatResponse(body, usage, self.name, OPENAI_RESPONSES, raw)

    async def _stream_native(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        payload = self._native_payload(request)
        with transport_errors(self.name):
            async with self._client().post(self._api_url("responses"), data=payload) as response:
                if response.status != 200:
                    raw = await response.read()
                    raise self._error(response.status, raw, response.headers)
                async for chunk in openai_responses.response_events(response.iter_any(), self.name):
                    yield chunk

    async def native_request(self, method: str, path: str, query: str = "") -> tuple[int, str, bytes]:
        """Ask the upstream's API for something it keeps (`NativeResources`), e.g. a stored response."""
        url = self._api_url(path) + (f"?{query}" if query else "")
        with transport_errors(self.name):
            client = self._client()
            call = client.delete(url, timeout=self._timeout) if method == "DELETE" else None
            async with call or client.get(url, timeout=self._timeout) as response:
                raw = await response.read()
                kind = response.headers.get("content-type", "application/json")
        return response.status, kind, raw


def voyage_body(body: Mapping[str, object]) -> dict[str, object]:
    """An OpenAI embeddings body in Voyage AI's words: `dimensions` is `output_dimension`, and its
    `encoding_format` is base64 or absent (floats)."""
    wanted = {k: v for k, v in body.items() if k not in ("dimensions", "encoding_format")}
    if body.get("dimensions") is not None:
        wanted["output_dimension"] = body["dimensions"]
    if body.get("encoding_format") == "base64":
        wanted["encoding_format"] = "base64"
    return wanted


def _relayable(data: bytes) -> bytes | None:
    """An event's JSON text when it can go to a client as one SSE `data:` line, byte for byte."""
    return None if b"\n" in data or b"\r" in data else data


def _parse_chunk(data: bytes, provider: str) -> JSONObject:
    chunk = json_object(data, provider, "a stream event")
    error = chunk.get("error")
    if error:
        fields = openai_error_fields(orjson.dumps({"error": error}))
        message = fields[0] if fields else "upstream stream error"
        raise UpstreamUnavailable(f"{provider} stream failed: {message}")
    return chunk
