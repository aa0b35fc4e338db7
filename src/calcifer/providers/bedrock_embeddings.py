"""OpenAI's embeddings request to Bedrock's embedding models through InvokeModel, and back (pure).

Amazon Titan Text Embeddings takes one text per call: `{"inputText", "dimensions"?}` → `{"embedding":
[...], "inputTextTokenCount"}`, so a list of inputs is several calls. Cohere Embed takes a list:
`{"texts": [...], "input_type": "search_document"}` → `{"embeddings": [[...]], ...}`, its token count in
the `X-Amzn-Bedrock-Input-Token-Count` header. Both take text, not OpenAI token ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.types import JSONObject, Usage
from calcifer.providers.gemini_embeddings import texts_of


def is_embedding_model(model: str) -> bool:
    return ".titan-embed" in model or (".embed-" in model and "cohere" in model)


def is_titan(model: str) -> bool:
    return ".titan-embed" in model


def titan_bodies(body: Mapping[str, object]) -> list[JSONObject]:
    dimensions = body.get("dimensions")
    extra: JSONObject = {"dimensions": dimensions} if isinstance(dimensions, int) else {}
    return [{"inputText": text, **extra} for text in texts_of(body)]


def cohere_body(body: Mapping[str, object]) -> JSONObject:
    return {"texts": texts_of(body), "input_type": "search_document"}


def _answer(vectors: Sequence[object], model: str, tokens: int) -> tuple[JSONObject, Usage]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    usage = Usage(tokens, 0)
    answer: JSONObject = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return answer, usage


def from_titan(answers: Sequence[Mapping[str, object]], model: str) -> tuple[JSONObject, Usage]:
    vectors: list[object] = []
    tokens = 0
    for answer in answers:
        vector, count = answer.get("embedding"), answer.get("inputTextTokenCount")
        if not isinstance(vector, list):
            raise UpstreamUnavailable("bedrock answered a Titan embedding without 'embedding'")
        vectors.append(vector)
        tokens += count if isinstance(count, int) else 0
    return _answer(vectors, model, tokens)


def from_cohere(answer: Mapping[str, object], model: str, tokens: int) -> tuple[JSONObject, Usage]:
    vectors = answer.get("embeddings")
    if isinstance(vectors, dict):  # asked for several embedding types: the float ones
        vectors = vectors.get("float")
    if not isinstance(vectors, list):
        raise UpstreamUnavailable("bedrock answered a Cohere embedding without 'embeddings'")
    return _answer(vectors, model, tokens)
