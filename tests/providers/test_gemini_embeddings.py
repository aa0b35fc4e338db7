"""Gemini embeddings: OpenAI's request to `batchEmbedContents` and back, against the shapes of Google's
documented example (ai.google.dev/gemini-api/docs/embeddings, "batchEmbedContents"), and the provider
against the loopback fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from calcifer.domain.errors import UpstreamRejected, UpstreamUnavailable
from calcifer.domain.types import EMBEDDINGS, ChatRequest, NativeCall, Usage
from calcifer.providers.gemini import GeminiProvider
from calcifer.providers.gemini_embeddings import from_gemini_embeddings, to_gemini_embeddings
from tests.fakes.gemini_server import GeminiFake

# The documented request: several texts, one request each, the model named in each.
DOCUMENTED_REQUEST = {
    "requests": [
        {
            "model": "models/gemini-embedding-001",
            "content": {"parts": [{"text": "What is the meaning of life?"}]},
        },
        {
            "model": "models/gemini-embedding-001",
            "content": {"parts": [{"text": "How much wood would a woodchuck chuck?"}]},
        },
    ]
}
DOCUMENTED_ANSWER = {"embeddings": [{"values": [-0.022374554, -0.004560036]}, {"values": [0.012, 0.5]}]}


def test_texts_become_one_request_each_in_order() -> None:
    body = {"model": "x", "input": ["What is the meaning of life?", "How much wood would a woodchuck chuck?"]}
    assert to_gemini_embeddings(body, "gemini-embedding-001") == DOCUMENTED_REQUEST


def test_one_string_and_dimensions() -> None:
    wire = to_gemini_embeddings({"input": "hi", "dimensions": 768}, "gemini-embedding-001")
    assert wire["requests"] == [
        {
            "model": "models/gemini-embedding-001",
            "content": {"parts": [{"text": "hi"}]},
            "outputDimensionality": 768,
        }
    ]


@pytest.mark.parametrize("given", [[1, 2], [[1, 2]], [], None, ["a", 1]])
def test_token_ids_are_refused_with_a_400(given: object) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        to_gemini_embeddings({"input": given}, "m")
    assert caught.value.status == 400 and caught.value.param == "input"


def test_the_answer_in_openais_shape_with_an_estimated_usage() -> None:
    body = {"input": ["What is the meaning of life?", "How much wood would a woodchuck chuck?"]}
    answer, usage = from_gemini_embeddings(DOCUMENTED_ANSWER, body, "gemini-embedding-001")
    assert answer["data"] == [
        {"object": "embedding", "index": 0, "embedding": [-0.022374554, -0.004560036]},
        {"object": "embedding", "index": 1, "embedding": [0.012, 0.5]},
    ]
    assert (answer["object"], answer["model"]) == ("list", "gemini-embedding-001")
    assert usage == Usage(7 + 10, 0, estimated=True)  # ceil(28 / 4) + ceil(38 / 4)
    assert answer["usage"] == {"prompt_tokens": 17, "total_tokens": 17, "estimated": True}


def test_a_reported_token_count_is_taken_as_is() -> None:
    reported = {**DOCUMENTED_ANSWER, "usageMetadata": {"promptTokenCount": 15}}
    answer, usage = from_gemini_embeddings(reported, {"input": ["a", "b"]}, "m")
    assert usage == Usage(15, 0) and answer["usage"] == {"prompt_tokens": 15, "total_tokens": 15}


@pytest.mark.parametrize("broken", [{}, {"embeddings": [{"value": []}]}, {"embeddings": ["x"]}])
def test_a_malformed_answer_is_an_upstream_failure(broken: dict[str, object]) -> None:
    with pytest.raises(UpstreamUnavailable):
        from_gemini_embeddings(broken, {"input": "a"}, "m")


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiFake, GeminiProvider]]:
    async with GeminiFake() as fake:
        provider = GeminiProvider(
            models=frozenset({"gemini-embedding-001"}),
            api_key=fake.api_key,
            base_url=fake.base_url,
            timeout=5,
        )
        await provider.start()
        yield fake, provider
        await provider.aclose()


async def test_the_provider_posts_batch_embed_contents_with_its_key(
    gemini: tuple[GeminiFake, GeminiProvider],
) -> None:
    fake, provider = gemini
    body = {"model": "gemini-embedding-001", "input": ["hello world"]}
    request = ChatRequest(
        "gemini-embedding-001", body, native=NativeCall(EMBEDDINGS, body, translatable=False)
    )
    answer = await provider.complete(request)
    assert answer.api == EMBEDDINGS and answer.provider == "gemini"
    assert answer.body["data"] == [{"object": "embedding", "index": 0, "embedding": [11.0, 0.0, 0.25]}]
    received = fake.received[-1]
    assert (received.method, received.headers["x-goog-api-key"]) == ("batchEmbedContents", fake.api_key)
    fake.reply(429, {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(Exception, match="slow down"):
        await provider.complete(request)
