"""Azure OpenAI: OpenAI's chat-completions API behind per-deployment URLs.

`POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...` with an `api-key`
header. A model name maps to its deployment. Two Azure quirks are smoothed over: the first stream chunk
may carry only `prompt_filter_results` (with `choices: []` and an empty id), which is absorbed, and
error bodies may say `"type": null`, which becomes an OpenAI error type.

The Responses API is spoken natively on Azure's v1 API: `POST {endpoint}/openai/v1/responses` with
`model` = the deployment name (no api-version).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from calcifer.domain.errors import ProviderError
from calcifer.domain.types import ChatRequest, JSONObject
from calcifer.providers._http import ErrorFields, error_for_status, openai_error_fields
from calcifer.providers.openai import OpenAIProvider

AZURE_API_VERSION = "2024-10-21"


def azure_error_fields(body: bytes) -> ErrorFields | None:
    """OpenAI's error fields of an Azure error body, with `type: null` given a proper type."""
    fields = openai_error_fields(body)
    if fields is None:
        return None
    message, kind, code, param = fields
    if kind is None:
        kind = "invalid_request_error" if code == "content_filter" else None
    return message, kind, code, param


def is_prompt_filter_chunk(chunk: Mapping[str, object]) -> bool:
    """Azure's leading stream chunk that only reports prompt filtering (no choices, no usage)."""
    return "prompt_filter_results" in chunk and not chunk.get("choices") and not chunk.get("usage")


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI deployments, each serving one model name."""

    def __init__(
        self,
        *,
        endpoint: str,
        deployments: Mapping[str, str],
        api_key: str | None,
        api_version: str = AZURE_API_VERSION,
        timeout: float = 60.0,
        name: str = "azure",
        credential_setting: str = "AZURE_OPENAI_API_KEY",
    ) -> None:
        super().__init__(
            models=frozenset(deployments),
            api_key=api_key,
            base_url=endpoint,
            timeout=timeout,
            name=name,
            credential_setting=credential_setting,
            responses=True,
        )
        self._deployments = dict(deployments)
        self._v1 = endpoint.rstrip("/") + "/openai/v1/"
        base = endpoint.rstrip("/") + "/openai/deployments/"
        query = "?" + urlencode({"api-version": api_version})
        self._urls = {
            m: base + quote(d, safe="") + "/chat/completions" + query for m, d in deployments.items()
        }
        self._embedding_urls = {
            m: base + quote(d, safe="") + "/embeddings" + query for m, d in deployments.items()
        }

    def _auth_headers(self) -> dict[str, str]:
        return {"api-key": self._api_key} if self._api_key else {}

    def _endpoint(self, request: ChatRequest) -> str:
        return self._urls[request.model]

    def _api_url(self, path: str) -> str:
        return self._v1 + path

    def _embeddings_url(self, request: ChatRequest) -> str:
        return self._embedding_urls[request.model]

    def _native_model(self, request: ChatRequest) -> str:
        return self._deployments[request.model]

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProviderError:
        return error_for_status(status, raw, headers, self.name, azure_error_fields)

    def _relayed(self, chunk: JSONObject) -> bool:
        return not is_prompt_filter_chunk(chunk)
