"""Vertex AI: Gemini and Claude (translated and on the faithful Messages lane) against the loopback
fake, with OAuth tokens google-auth gets from a service-account JSON at the fake token endpoint (which
verifies the signed JWT); expired tokens refused and replaced, refresh before expiry mid-traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calcifer.domain.errors import UpstreamRejected, UpstreamUnavailable
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatRequest, NativeCall, StreamChunk, Usage
from calcifer.providers.google_tokens import GoogleTokens, load_credentials
from calcifer.providers.vertex import VertexProvider, vertex_base_url
from tests.fakes.threaded import serve_on_loopback
from tests.fakes.vertex_server import VertexFake, service_account

GEMINI, CLAUDE = "gemini-2.5-pro", "claude-sonnet-4-5"


@dataclass
class Setup:
    fake: VertexFake
    url: str
    credentials_file: Path
    clock: list[float]


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = [1_800_000_000.0]
    fake = VertexFake(now=lambda: clock[0])
    runner, url = await serve_on_loopback(fake.app())
    path = tmp_path / "sa.json"
    fake.public_key = service_account(path, url + "/token").public_key()
    yield Setup(fake, url, path, clock)
    await runner.cleanup()


async def vertex(setup: Setup, tokens: GoogleTokens | None = None) -> VertexProvider:
    if tokens is None:
        credentials, project = load_credentials(
            {"GOOGLE_APPLICATION_CREDENTIALS": str(setup.credentials_file)}
        )
        assert project == "test-project"
        tokens = GoogleTokens(credentials, now=lambda: setup.clock[0])
    provider = VertexProvider(
        models=frozenset({GEMINI, CLAUDE}),
        tokens=tokens,
        base_url=setup.url + "/v1/projects/test-project/locations/us-east5",
        max_output={CLAUDE: 64000},
    )
    await provider.start()
    return provider


def chat(model: str, stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model, {"model": model, "messages": [{"role": "user", "content": "Hi"}]}, stream=stream
    )


def native(stream: bool = False) -> ChatRequest:
    body = {
        "model": CLAUDE,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": stream,
    }
    return ChatRequest(CLAUDE, body, stream=stream, native=NativeCall(ANTHROPIC_MESSAGES, body))


async def collect(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in chunks]


def test_the_regional_and_global_endpoints() -> None:
    assert (
        vertex_base_url("p", "us-east5")
        == "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5"
    )
    assert (
        vertex_base_url("p", "global") == "https://aiplatform.googleapis.com/v1/projects/p/locations/global"
    )


async def test_gemini_on_vertex_with_a_token_from_the_service_account(setup: Setup) -> None:
    provider = await vertex(setup)
    answer = await provider.complete(chat(GEMINI))
    received = setup.fake.received[-1]
    assert (received.publisher, received.model, received.method) == ("google", GEMINI, "generateContent")
    assert received.token == "ya29.fake-1" and received.body["contents"][0]["role"] == "user"
    assert answer.usage == Usage(10, 6)
    chunks = await collect(provider.stream(chat(GEMINI, stream=True)))
    deltas = [c.data["choices"][0]["delta"] for c in chunks if c.data.get("choices")]  # type: ignore[index]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "Hi from Gemini" and chunks[-1].usage == Usage(10, 6)
    assert setup.fake.received[-1].query == {"alt": "sse"} and len(setup.fake.issued) == 1
    await provider.aclose()


async def test_claude_on_vertex_translated_and_native(setup: Setup) -> None:
    provider = await vertex(setup)
    answer = await provider.complete(chat(CLAUDE))
    sent = setup.fake.received[-1]
    assert (sent.publisher, sent.method) == ("anthropic", "rawPredict")
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and sent.body["max_tokens"] == 64000
    assert answer.body["choices"][0]["message"]["content"] == "Hello from Vertex!"  # type: ignore[index]
    own = await provider.complete(native())
    assert own.api == ANTHROPIC_MESSAGES and own.body["id"] == "msg_vrtx_01Ab3tq6bNt2DwVoPDx8zM8H"
    assert setup.fake.received[-1].body == {
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
        "anthropic_version": "vertex-2023-10-16",
    }
    events = await collect(provider.stream(native(stream=True)))
    assert setup.fake.received[-1].method == "streamRawPredict"
    assert [e.data["type"] for e in events][-1] == "message_stop" and events[4].usage == Usage(20, 8)
    translated = await collect(provider.stream(chat(CLAUDE, stream=True)))
    assert translated[-1].usage == Usage(20, 8) and translated[-1].data["choices"] == []
    assert provider.native_apis_for(CLAUDE) == {ANTHROPIC_MESSAGES} and not provider.native_apis_for(GEMINI)
    assert provider.supports(f"{CLAUDE}@20250929") and not provider.supports("gemini-0")
    await provider.aclose()


async def test_an_expired_token_is_refused_and_replaced_once(setup: Setup) -> None:
    provider = await vertex(setup)
    await provider.complete(chat(GEMINI))
    setup.fake.expire("ya29.fake-1")  # revoked early: the gateway still believes it valid
    answer = await provider.complete(chat(GEMINI))
    assert answer.usage == Usage(10, 6)
    assert setup.fake.refused == ["ya29.fake-1"] and setup.fake.received[-1].token == "ya29.fake-2"
    await provider.aclose()


async def test_tokens_are_refreshed_before_expiry_mid_traffic(setup: Setup) -> None:
    provider = await vertex(setup)
    for _ in range(3):
        await provider.complete(chat(GEMINI))
    assert {r.token for r in setup.fake.received} == {"ya29.fake-1"}
    setup.clock[0] += 3600 - 30  # half a minute left: the next request waits for a new token
    await provider.complete(chat(GEMINI))
    assert setup.fake.received[-1].token == "ya29.fake-2"
    setup.clock[0] += 60  # the first token has expired at the fake; nothing uses it any more
    await provider.complete(chat(GEMINI))
    assert setup.fake.received[-1].token == "ya29.fake-2" and setup.fake.refused == []
    await provider.aclose()


async def test_a_forged_assertion_gets_no_token_and_no_credentials_send_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    forged = tmp_path / "other.json"
    service_account(forged, setup.url + "/token")  # a key the fake does not know
    credentials, _ = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": str(forged)})
    provider = await vertex(setup, GoogleTokens(credentials))
    with pytest.raises(UpstreamUnavailable, match="access token"):
        await provider.complete(chat(GEMINI))
    assert setup.fake.refused and setup.fake.refused[0].startswith("Invalid JWT Signature")
    await provider.aclose()
    provider = await vertex(setup, GoogleTokens(None))
    with pytest.raises(UpstreamRejected, match="no Google Cloud credentials"):
        await provider.complete(chat(GEMINI))
    assert not provider.configured and setup.fake.received == []
    await provider.aclose()


def test_missing_credentials_file_is_no_credentials(tmp_path: Path) -> None:
    assert load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")}) == (
        None,
        None,
    )


@pytest.mark.parametrize("broken", [{}, {"predictions": [{"embeddings": {}}]}, {"predictions": ["x"]}])
def test_a_malformed_embeddings_answer_is_an_upstream_failure(broken: dict[str, object]) -> None:
    from calcifer.providers.vertex_embeddings import from_vertex_embeddings

    with pytest.raises(UpstreamUnavailable):
        from_vertex_embeddings(broken, {"input": "a"}, "text-embedding-005")


def test_embeddings_without_statistics_are_estimated() -> None:
    from calcifer.providers.vertex_embeddings import from_vertex_embeddings, to_vertex_embeddings

    assert to_vertex_embeddings({"input": "abc"}) == {"instances": [{"content": "abc"}]}
    answer, usage = from_vertex_embeddings(
        {"predictions": [{"embeddings": {"values": [1.0]}}]}, {"input": "abcdefgh"}, "m"
    )
    assert usage == Usage(2, 0, estimated=True) and answer["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
