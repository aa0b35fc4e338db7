"""OpenAI's embeddings request to Vertex AI's `predict` for text embedding models, and back (pure).

Request: `{"instances": [{"content": text}, ...], "parameters": {"outputDimensionality": n}}`. Answer:
`{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count": n}}}]}` in input order;
the token counts are summed for the usage.
"""

from __future__ import annotations

from collections.abc import Mapping

from calcifer.domain.errors import UpstreamUnavailable
from calcifer.domain.types import JSONObject, Usage
from calcifer.providers.gemini_embeddings import input_usage, texts_of


def is_embedding_model(model: str) -> bool:
    return "embedding" in model


def to_vertex_embeddings(body: Mapping[str, object]) -> JSONObject:
    request: JSONObject = {"instances": [{"content": text} for text in texts_of(body)]}
    dimensions = body.get("dimensions")
    if isinstance(dimensions, int):
        request["parameters"] = {"outputDimensionality": dimensions}
    return request


def from_vertex_embeddings(
    answer: Mapping[str, object], body: Mapping[str, object], model: str
) -> tuple[JSONObject, Usage]:
    predictions = answer.get("predictions")
    if not isinstance(predictions, list):
        raise UpstreamUnavailable("vertex answered an embeddings request without 'predictions'")
    data: list[object] = []
    tokens = 0
    for index, prediction in enumerate(predictions):
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        values = embeddings.get("values") if isinstance(embeddings, dict) else None
        if not isinstance(values, list):
            raise UpstreamUnavailable("vertex answered an embedding without 'values'")
        statistics = embeddings.get("statistics") if isinstance(embeddings, dict) else None
        count = statistics.get("token_count") if isinstance(statistics, dict) else None
        tokens += int(count) if isinstance(count, (int, float)) else 0
        data.append({"object": "embedding", "index": index, "embedding": values})
    usage = input_usage(body, {"prompt_tokens": tokens})
    counts: JSONObject = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": counts}, usage
