"""Bedrock: Converse and ConverseStream translated both ways (golden fixtures shaped after AWS's
documented examples), Claude's own Messages body through InvokeModel, SigV4 from botocore's signer
checked by a fake that recomputes the signature itself, and credentials refreshed mid-traffic."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from calcifer.domain.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatRequest, NativeCall, StreamChunk, Usage
from calcifer.providers.aws_signing import AwsSigner
from calcifer.providers.bedrock import TITAN_IN_FLIGHT, BedrockProvider, base_model
from calcifer.providers.bedrock_wire import to_converse
from tests.fakes.bedrock_server import BedrockFake, Reply, event, exception, fixture, frame
from tests.fakes.threaded import serve_on_loopback

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-3-70b-instruct-v1:0"
MODELS = frozenset({CLAUDE, LLAMA})
KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass
class Setup:
    fake: BedrockFake
    url: str


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    fake = BedrockFake(credentials={KEY: (SECRET, None)})
    runner, url = await serve_on_loopback(fake.app())
    yield Setup(fake, url)
    await runner.cleanup()


async def bedrock(setup: Setup, signer: AwsSigner | None = None) -> BedrockProvider:
    provider = BedrockProvider(
        models=MODELS, signer=signer or AwsSigner(Credentials(KEY, SECRET), "us-east-1"), base_url=setup.url
    )
    await provider.start()
    return provider


def chat(model: str = CLAUDE, **body: object) -> ChatRequest:
    return ChatRequest(model, {"model": model, "messages": [{"role": "user", "content": "Hi"}], **body})


async def collect(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in chunks]


# --- translation (pure) ---------------------------------------------------------------------------


def test_an_openai_request_becomes_converse() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "top_song",
            "description": "Most popular song",
            "parameters": {"type": "object", "properties": {"sign": {"type": "string"}}},
        },
    }
    body = {
        "messages": [
            {"role": "system", "content": "You are a DJ."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is on WZPZ?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "tooluse_1",
                        "type": "function",
                        "function": {"name": "top_song", "arguments": '{"sign": "WZPZ"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"},
        ],
        "tools": [tool],
        "tool_choice": "required",
        "max_tokens": 512,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
    }
    assert to_converse(body, CLAUDE) == {
        "system": [{"text": "You are a DJ."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is on WZPZ?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Elemental Hotel"}]}}
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "top_song",
                        "description": "Most popular song",
                        "inputSchema": {
                            "json": {"type": "object", "properties": {"sign": {"type": "string"}}}
                        },
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
    }


def test_a_linked_image_is_refused_and_no_max_tokens_is_left_to_the_model() -> None:
    linked = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
        ]
    }
    with pytest.raises(Exception, match="data URLs"):
        to_converse(linked, CLAUDE)
    assert "inferenceConfig" not in to_converse({"messages": [{"role": "user", "content": "x"}]}, CLAUDE)


def test_profile_ids_are_served_as_their_model_and_only_claude_takes_the_messages_body() -> None:
    provider = BedrockProvider(models=MODELS, signer=AwsSigner(None, "us-east-1"))
    assert base_model("us." + CLAUDE) == CLAUDE and base_model("global." + CLAUDE) == CLAUDE
    assert provider.supports("eu." + CLAUDE) and not provider.supports("us.mystery.model")
    assert provider.native_apis_for("us." + CLAUDE) == {ANTHROPIC_MESSAGES}
    assert provider.native_apis_for(LLAMA) == frozenset()
    assert not provider.configured


# --- Converse through the fake ----------------------------------------------------------------------


async def test_converse_answer_is_translated_and_the_signature_verified(setup: Setup) -> None:
    provider = await bedrock(setup)
    answer = await provider.complete(chat())
    assert answer.body["choices"][0]["message"]["content"].startswith("Here is a song")  # type: ignore[index]
    assert answer.usage == Usage(125, 60)
    received = setup.fake.received[-1]
    assert (received.model, received.action, received.access_key) == (CLAUDE, "converse", KEY)
    assert received.body["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]
    assert setup.fake.refused == []
    await provider.aclose()


async def test_tool_use_and_cache_usage(setup: Setup) -> None:
    provider = await bedrock(setup)
    setup.fake.script.append(Reply(body=fixture("converse_tool_use.json")))
    answer = await provider.complete(chat(LLAMA))
    choice = answer.body["choices"][0]  # type: ignore[index]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert (call["function"]["name"], call["function"]["arguments"]) == ("top_song", '{"sign":"WZPZ"}')
    # inputTokens leaves out the cache: prompt = 375 + 1500 read + 100 written
    assert answer.usage == Usage(1975, 72, cached_tokens=1500, cache_write_tokens=100)
    await provider.aclose()


async def test_converse_stream_is_decoded_from_the_binary_framing(setup: Setup) -> None:
    provider = await bedrock(setup)
    chunks = await collect(provider.stream(chat(stream=True)))
    deltas = [c.data["choices"][0]["delta"] for c in chunks if c.data.get("choices")]  # type: ignore[index]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas) == "I'll look up the top song."
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["id"] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q" and calls[0]["function"]["name"] == "top_song"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"sign": "WZPZ"}'
    finishes = [c.data["choices"][0]["finish_reason"] for c in chunks if c.data.get("choices")]  # type: ignore[index]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage == Usage(375, 72) and chunks[-1].data["choices"] == []
    assert setup.fake.received[-1].action == "converse-stream"
    await provider.aclose()


@pytest.mark.parametrize(
    ("kind", "error"),
    [("throttlingException", UpstreamRateLimited), ("modelStreamErrorException", UpstreamUnavailable)],
)
async def test_an_exception_inside_the_stream_is_its_typed_error(
    setup: Setup, kind: str, error: type
) -> None:
    provider = await bedrock(setup)
    setup.fake.script.append(
        Reply(events=[event("messageStart", {"role": "assistant"}), exception(kind, "Too many")])
    )
    with pytest.raises(error, match="Too many"):
        await collect(provider.stream(chat(stream=True)))
    await provider.aclose()


async def test_a_corrupt_frame_or_a_cut_stream_fails_cleanly(setup: Setup) -> None:
    provider = await bedrock(setup)
    good = event("messageStart", {"role": "assistant"})
    setup.fake.script.append(Reply(events=[good[:-1] + bytes([good[-1] ^ 1])]))
    with pytest.raises(UpstreamUnavailable, match="broken event stream"):
        await collect(provider.stream(chat(stream=True)))
    setup.fake.script.append(
        Reply(events=[good, frame({":message-type": "event", ":event-type": "contentBlockStop"}, b"")])
    )
    with pytest.raises(UpstreamUnavailable, match="before it was complete"):
        await collect(provider.stream(chat(stream=True)))
    await provider.aclose()


# --- SigV4 and credentials ---------------------------------------------------------------------------


async def test_a_wrong_region_is_refused_by_the_fake_as_aws_does(setup: Setup) -> None:
    provider = await bedrock(setup, AwsSigner(Credentials(KEY, SECRET), "us-west-2"))
    with pytest.raises(UpstreamRejected) as caught:
        await provider.complete(chat())
    assert caught.value.status == 403 and "scoped to a valid region" in caught.value.message
    await provider.aclose()


async def test_a_wrong_secret_or_a_missing_session_token_is_refused(setup: Setup) -> None:
    provider = await bedrock(setup, AwsSigner(Credentials(KEY, "not-the-secret"), "us-east-1"))
    with pytest.raises(UpstreamRejected, match="signature we calculated does not match"):
        await provider.complete(chat())
    await provider.aclose()
    setup.fake.credentials["ASIATEMP"] = ("temp-secret", "session-token-1")
    provider = await bedrock(setup, AwsSigner(Credentials("ASIATEMP", "temp-secret"), "us-east-1"))
    with pytest.raises(UpstreamRejected, match="security token"):
        await provider.complete(chat())
    await provider.aclose()
    provider = await bedrock(
        setup, AwsSigner(Credentials("ASIATEMP", "temp-secret", "session-token-1"), "us-east-1")
    )
    assert (await provider.complete(chat())).usage == Usage(125, 60)
    await provider.aclose()


async def test_credentials_are_refreshed_before_expiry_mid_traffic(setup: Setup) -> None:
    clock = [datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()]
    issued: list[str] = []

    def refresh() -> dict[str, str]:
        n = len(issued) + 1
        issued.append(f"ASIAROLE{n}")
        setup.fake.credentials[f"ASIAROLE{n}"] = (f"secret-{n}", f"token-{n}")
        expiry = datetime.fromtimestamp(clock[0] + 3600, UTC).isoformat()
        return {
            "access_key": f"ASIAROLE{n}",
            "secret_key": f"secret-{n}",
            "token": f"token-{n}",
            "expiry_time": expiry,
        }

    first = refresh()
    credentials = RefreshableCredentials.create_from_metadata(
        first, refresh_using=refresh, method="assume-role"
    )
    credentials._time_fetcher = lambda: datetime.fromtimestamp(clock[0], UTC)
    provider = await bedrock(setup, AwsSigner(credentials, "us-east-1", now=lambda: clock[0]))
    for _ in range(3):
        await provider.complete(chat())
    assert [r.access_key for r in setup.fake.received] == ["ASIAROLE1"] * 3 and issued == ["ASIAROLE1"]
    clock[0] += 3600 - 300  # five minutes before expiry: inside botocore's refresh window
    del setup.fake.credentials["ASIAROLE1"]  # and AWS no longer takes the old key
    for _ in range(2):
        await provider.complete(chat())
    assert issued == ["ASIAROLE1", "ASIAROLE2"]
    assert [r.access_key for r in setup.fake.received][-2:] == ["ASIAROLE2"] * 2
    assert setup.fake.refused == []
    await provider.aclose()


async def test_without_credentials_nothing_is_sent(setup: Setup) -> None:
    provider = await bedrock(setup, AwsSigner(None, "us-east-1"))
    with pytest.raises(UpstreamRejected, match="no AWS credentials"):
        await provider.complete(chat())
    assert setup.fake.received == [] and setup.fake.refused == []
    await provider.aclose()


# --- Claude's own Messages body through InvokeModel ------------------------------------------------


def native(stream: bool = False) -> ChatRequest:
    body = {
        "model": CLAUDE,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": stream,
    }
    call = NativeCall(ANTHROPIC_MESSAGES, body, headers=(("anthropic-beta", "context-1m-2025-08-07, x"),))
    return ChatRequest(CLAUDE, {"model": CLAUDE, "messages": body["messages"]}, stream=stream, native=call)


async def test_claude_gets_its_messages_body_through_invoke_model(setup: Setup) -> None:
    provider = await bedrock(setup)
    answer = await provider.complete(native())
    sent = setup.fake.received[-1]
    assert sent.action == "invoke"
    assert sent.body == {
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["context-1m-2025-08-07", "x"],
    }
    assert answer.api == ANTHROPIC_MESSAGES and answer.body["id"] == "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL"
    assert answer.usage == Usage(12, 12)
    await provider.aclose()


async def test_claudes_stream_is_relayed_event_by_event(setup: Setup) -> None:
    provider = await bedrock(setup)
    chunks = await collect(provider.stream(native(stream=True)))
    assert setup.fake.received[-1].action == "invoke-with-response-stream"
    kinds = [c.data["type"] for c in chunks]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert chunks[2].raw is not None and chunks[2].raw.startswith(b"event: content_block_delta\ndata: ")
    assert chunks[4].usage == Usage(12, 12)
    await provider.aclose()


def test_a_chunk_event_carries_base64_of_the_models_event() -> None:
    message = event("chunk", {"bytes": base64.b64encode(b'{"type":"ping"}').decode()})
    assert b":event-type" in message and message[:4] == len(message).to_bytes(4, "big")


# --- embeddings through InvokeModel -----------------------------------------------------------------


def embed(model: str, texts: list[str], **extra: object) -> ChatRequest:
    from calcifer.domain.types import EMBEDDINGS

    body = {"model": model, "input": texts, **extra}
    return ChatRequest(model, body, native=NativeCall(EMBEDDINGS, body, translatable=False))


async def test_titan_embeds_one_text_per_call_and_cohere_all_at_once(setup: Setup) -> None:
    from calcifer.domain.types import EMBEDDINGS

    provider = await bedrock(setup)
    titan = "amazon.titan-embed-text-v2:0"
    answer = await provider.complete(embed(titan, ["hello world", "one two three"], dimensions=256))
    assert [r.body for r in setup.fake.received[-2:]] == [
        {"inputText": "hello world", "dimensions": 256},
        {"inputText": "one two three", "dimensions": 256},
    ]
    assert answer.api == EMBEDDINGS and answer.usage == Usage(5, 0)
    assert answer.body["data"] == [
        {"object": "embedding", "index": 0, "embedding": [11.0, 256.0]},
        {"object": "embedding", "index": 1, "embedding": [13.0, 256.0]},
    ]
    cohere = await provider.complete(embed("cohere.embed-english-v3", ["a b", "c"]))
    assert setup.fake.received[-1].body == {"texts": ["a b", "c"], "input_type": "search_document"}
    assert cohere.usage == Usage(3, 0) and len(cohere.body["data"]) == 2  # type: ignore[arg-type]
    assert provider.native_apis_for(titan) == {EMBEDDINGS} and EMBEDDINGS not in provider.native_apis_for(
        CLAUDE
    )
    await provider.aclose()


async def test_titan_calls_run_at_most_eight_at_once_and_answer_in_input_order(setup: Setup) -> None:
    provider = await bedrock(setup)
    setup.fake.embed_pause = 0.05
    texts = ["w " * n for n in range(1, 21)]  # each text's length is its vector's first value
    answer = await provider.complete(embed("amazon.titan-embed-text-v2:0", texts))
    data: list[dict[str, Any]] = answer.body["data"]  # type: ignore[assignment]
    assert 1 < setup.fake.most_in_flight <= TITAN_IN_FLIGHT == 8
    assert [d["embedding"][0] for d in data] == [float(len(t)) for t in texts]
    assert [d["index"] for d in data] == list(range(20))
    assert answer.usage == Usage(sum(range(1, 21)), 0)
    setup.fake.script = [Reply(status=400, body={"message": "Malformed input request"})]
    with pytest.raises(UpstreamRejected, match="Malformed input request"):
        await provider.complete(embed("amazon.titan-embed-text-v2:0", texts))
    await provider.aclose()
