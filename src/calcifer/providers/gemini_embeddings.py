"""OpenAI's embeddings request to Gemini's `batchEmbedContents` and its answer back, pure functions.

Request: `{"requests": [{"model": "models/<m>", "content": {"parts": [{"text": ...}]},
"outputDimensionality": n}]}`, one per input text, in order. Answer: `{"embeddings": [{"values": [...]}]}`
in the same order. Gemini takes text, not OpenAI token ids: an input of token arrays is refused. Its
usage, when the answer carries `usageMetadata.promptTokenCount`, is taken as reported; otherwise it is
the documented estimate (4 characters a token), marked as estimated.
"""

from __future__ import annotations

from collections.abc import Mapping

from calcifer.domain.errors import UpstreamRejected, UpstreamUnavailable
from calcifer.domain.tokens import estimate_text
from calcifer.domain.types import JSONObject, Usage


def texts_of(body: Mapping[str, object]) -> list[str]:
    """The input texts of an OpenAI embeddings body (a string or a list of strings)."""
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise UpstreamRejected(
            "This embedding model takes text input: a string or an array of strings (not token ids).",
            status=400,
            param="input",
        )
    return [t for t in texts if isinstance(t, str)]


def input_usage(body: Mapping[str, object], reported: object) -> Usage:
    """The usage of an embeddings request: the answer's `prompt_tokens` (or `total_tokens`, which some
    OpenAI-compatible servers send alone) when it has one, else counted from the input (token ids one
    each, text at 4 characters a token) and marked as estimated."""
    if isinstance(reported, Mapping):
        for name in ("prompt_tokens", "total_tokens"):
            count = reported.get(name)
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                return Usage(count, 0)
    raw = body.get("input")
    items = (
        [raw] if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)) else raw
    )
    total = 0
    for item in items if isinstance(items, list) else []:
        total += estimate_text(item) if isinstance(item, str) else len(item) if isinstance(item, list) else 0
    return Usage(total, 0, estimated=True)


def to_gemini_embeddings(body: Mapping[str, object], model: str) -> JSONObject:
    dimensions = body.get("dimensions")
    requests: list[object] = []
    for text in texts_of(body):
        item: JSONObject = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if isinstance(dimensions, int):
            item["outputDimensionality"] = dimensions
        requests.append(item)
    return {"requests": requests}


def from_gemini_embeddings(
    answer: Mapping[str, object], body: Mapping[str, object], model: str
) -> tuple[JSONObject, Usage]:
    """OpenAI's embeddings list (float vectors) and the usage of the request."""
    embeddings = answer.get("embeddings")
    if not isinstance(embeddings, list):
        raise UpstreamUnavailable("gemini answered an embeddings request without 'embeddings'")
    data: list[object] = []
    for index, item in enumerate(embeddings):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise UpstreamUnavailable("gemini answered an embedding without 'values'")
        data.append({"object": "embedding", "index": index, "embedding": values})
    metadata = answer.get("usageMetadata")
    reported = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    usage = input_usage(body, {"prompt_tokens": reported})
    usage_json: JSONObject = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    if usage.estimated:
        usage_json["estimated"] = True
    return {"object": "list", "data": data, "model": model, "usage": usage_json}, usage
