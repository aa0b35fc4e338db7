"""Embedding answers the fakes give: vectors derived from each input, so a test can tell them apart.

Input `i` of text `t` gets the vector `[len(t), i, 0.25, ...]` cut or padded to `dimensions` (3 when
absent), and each text counts one token per word (a token-id input one token per id), so usage and
cost can be computed by hand.
"""

from __future__ import annotations

import base64
import struct
from typing import Any


def vector(text: str | list[int], index: int, dimensions: int | None) -> list[float]:
    size = dimensions or 3
    values = [float(len(text)), float(index)] + [0.25] * max(size - 2, 0)
    return values[:size]


def tokens(text: str | list[int]) -> int:
    return len(text) if isinstance(text, list) else len(text.split())


def inputs(body: dict[str, Any]) -> list[str | list[int]]:
    raw = body["input"]
    if isinstance(raw, str) or (raw and isinstance(raw[0], int)):
        return [raw]
    return list(raw)


def openai_answer(body: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """OpenAI's embeddings answer (the API reference's shape), base64 when the body asks for it."""
    data: list[dict[str, Any]] = []
    for i, text in enumerate(inputs(body)):
        values: Any = vector(text, i, body.get("dimensions"))
        if body.get("encoding_format") == "base64":
            values = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": values})
    count = sum(tokens(t) for t in inputs(body))
    return {
        "object": "list",
        "data": data,
        "model": model or body["model"],
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }


def gemini_answer(body: dict[str, Any]) -> dict[str, Any]:
    """`batchEmbedContents`'s answer: `{"embeddings": [{"values": [...]}]}`, in request order."""
    embeddings = []
    for i, request in enumerate(body["requests"]):
        text = "".join(part["text"] for part in request["content"]["parts"])
        embeddings.append({"values": vector(text, i, request.get("outputDimensionality"))})
    return {"embeddings": embeddings}
