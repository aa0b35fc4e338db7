"""AWS Bedrock: chat through Converse / ConverseStream for every model, and Claude's own Messages
requests (the faithful `/v1/messages` lane) through InvokeModel / InvokeModelWithResponseStream with
`anthropic_version: bedrock-2023-05-31`. Requests are signed with SigV4 (`aws_signing`); streams come
in AWS's binary event-stream framing (`bedrock_stream`).

`POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/converse` (`converse-stream`,
`invoke`, `invoke-with-response-stream`). A cross-region inference profile id (`us.`, `eu.`, `apac.`,
`global.` ... before the model id) is sent as given and served as its model.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import orjson

from calcifer.domain.errors import ProviderError, UpstreamUnavailable
from calcifer.domain.types import (
    ANTHROPIC_MESSAGES,
    EMBEDDINGS,
    ChatRequest,
    ChatResponse,
    JSONObject,
    StreamChunk,
)
from calcifer.providers._http import HttpProvider, error_for_status, json_object, post_json, transport_errors
from calcifer.providers.anthropic_native import NativeEvents
from calcifer.providers.anthropic_stream import AnthropicChunker
from calcifer.providers.anthropic_wire import usage_from_anthropic
from calcifer.providers.aws_signing import AwsSigner
from calcifer.providers.bedrock_embeddings import (
    cohere_body,
    from_cohere,
    from_titan,
    is_embedding_model,
    is_titan,
    titan_bodies,
)
from calcifer.providers.bedrock_stream import ConverseEvents, aws_error_fields, event_messages
from calcifer.providers.bedrock_wire import from_converse, to_converse

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_PROFILE = re.compile(r"^(us|eu|apac|au|jp|ca|us-gov|global)\.")
_NO_APIS: frozenset[str] = frozenset()
_MESSAGES = frozenset({ANTHROPIC_MESSAGES})
_EMBEDDINGS = frozenset({EMBEDDINGS})
TITAN_IN_FLIGHT = 8  # Titan embeds one text per call: the calls of one request at once, at most


def base_model(model: str) -> str:
    """The model id of a cross-region inference profile id (the id itself otherwise)."""
    return _PROFILE.sub("", model, count=1)


class BedrockProvider(HttpProvider):
    def __init__(
        self,
        *,
        models: frozenset[str],
        signer: AwsSigner,
        base_url: str | None = None,
        timeout: float = 60.0,
        name: str = "bedrock",
    ) -> None:
        super().__init__(
            name=name,
            models=models,
            api_key=None,
            timeout=timeout,
            credential_setting="AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or a role)",
            key_required=False,
        )
        self._signer = signer
        self._base = (base_url or f"https://bedrock-runtime.{signer.region}.amazonaws.com").rstrip("/")
        self.native_apis = _MESSAGES | _EMBEDDINGS  # per model: `native_apis_for`

    @property
    def configured(self) -> bool:
        return self._signer.configured

    def supports(self, model: str) -> bool:
        return model in self.models or base_model(model) in self.models

    def native_apis_for(self, model: str) -> frozenset[str]:
        """Claude takes Anthropic's own Messages body through InvokeModel, Titan and Cohere embedding
        models embeddings; other models only Converse."""
        if is_embedding_model(model):
            return _EMBEDDINGS
        return _MESSAGES if base_model(model).startswith("anthropic.claude") else _NO_APIS

    def _url(self, model: str, action: str) -> str:
        return f"{self._base}/model/{quote(model, safe='')}/{action}"

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProviderError:
        return error_for_status(status, raw, headers, self.name, aws_error_fields)

    def _call(self, request: ChatRequest, stream: bool) -> tuple[str, bytes]:
        native = request.native
        if native is not None and native.api == ANTHROPIC_MESSAGES:
            body = {k: v for k, v in native.body.items() if k not in ("model", "stream")}
            body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
            betas = dict(native.headers).get("anthropic-beta")
            if betas:
                body["anthropic_beta"] = [b.strip() for b in betas.split(",") if b.strip()]
            action = "invoke-with-response-stream" if stream else "invoke"
            return self._url(request.model, action), orjson.dumps(body)
        action = "converse-stream" if stream else "converse"
        return self._url(request.model, action), orjson.dumps(to_converse(request.body, request.model))

    async def _signed_post(self, url: str, payload: bytes) -> tuple[bytes, Mapping[str, str]]:
        headers = await self._signer.headers(url, payload)
        return await post_json(
            self._client(), url, payload, self.name, self._error, timeout=self._timeout, headers=headers
        )

    async def _embed(self, request: ChatRequest) -> ChatResponse:
        assert request.native is not None
        url, model = self._url(request.model, "invoke"), request.model
        if is_titan(model):
            body, usage = from_titan(await self._titan(url, titan_bodies(request.native.body)), model)
        else:
            raw, headers = await self._signed_post(url, orjson.dumps(cohere_body(request.native.body)))
            count = headers.get("x-amzn-bedrock-input-token-count", "0")
            tokens = int(count) if count.isdigit() else 0
            body, usage = from_cohere(json_object(raw, self.name), model, tokens)
        return ChatResponse(body, usage, self.name, EMBEDDINGS)

    async def _titan(self, url: str, bodies: list[JSONObject]) -> list[JSONObject]:
        """One call per text (Titan takes one), at most `TITAN_IN_FLIGHT` at once, answers in input
        order; the first call to fail fails them all with its own (domain) error."""
        gate = asyncio.Semaphore(TITAN_IN_FLIGHT)

        async def one(body: JSONObject) -> JSONObject:
            async with gate:
                raw, _ = await self._signed_post(url, orjson.dumps(body))
            return json_object(raw, self.name)

        try:
            async with asyncio.TaskGroup() as group:
                calls = [group.create_task(one(body)) for body in bodies]
        except* Exception as failed:
            raise failed.exceptions[0] from None
        return [call.result() for call in calls]

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.native is not None and request.native.api == EMBEDDINGS:
            return await self._embed(request)
        url, payload = self._call(request, stream=False)
        raw, _ = await self._signed_post(url, payload)
        answer = json_object(raw, self.name)
        if request.native is not None:
            usage = answer.get("usage")
            counted = usage_from_anthropic(usage) if isinstance(usage, dict) else None
            return ChatResponse(answer, counted, self.name, ANTHROPIC_MESSAGES, raw)
        return from_converse(answer, request.model, _message_id(), int(time.time()), self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        url, payload = self._call(request, stream=True)
        headers = await self._signer.headers(url, payload)
        native = NativeEvents(self.name) if request.native is not None else None
        converse = ConverseEvents(_message_id(), request.model)
        chunker = AnthropicChunker(int(time.time()), self.name)
        with transport_errors(self.name):
            async with self._client().post(url, data=payload, headers=headers) as response:
                if response.status != 200:
                    raise self._error(response.status, await response.read(), response.headers)
                async for kind, event in event_messages(response.iter_any(), self.name):
                    if native is not None:
                        if kind == "chunk" and isinstance(event.get("bytes"), str):
                            yield native.feed("", base64.b64decode(str(event["bytes"])))
                        continue
                    for message_event in converse.feed(kind, event):
                        for chunk in chunker.feed(message_event):
                            yield chunk
        finished = native.finished if native is not None else chunker.finished
        if not finished:
            raise UpstreamUnavailable(f"{self.name} ended the stream before it was complete")


def _message_id() -> str:
    """Converse answers carry no id: one is made for the client's chat completion."""
    return f"msg_bedrock_{uuid.uuid4().hex[:24]}"
