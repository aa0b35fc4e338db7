"""`/v1/responses` for Claude and Gemini, with the official `openai` SDK: the request is translated to
the provider's API and the answer back into a response object or the full event stream (every body
and event valid against OpenAI's schemas); the gateway keeps what it made for `previous_response_id`,
`retrieve`, `input_items` and `delete`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from calcifer.domain.types import StoredResponse
from tests.fakes.openai_server import Script
from tests.fakes.threaded import AsgiServer
from tests.responses.conftest import (
    CLAUDE,
    FUNCTION,
    GEMINI,
    GPT,
    Fakes,
    cost,
    sse_events,
    usage_cost,
    valid,
    valid_stream,
)

HOSTED: Any = [
    {"type": "web_search", "external_web_access": False},
    {
        "type": "namespace",
        "name": "agents",
        "tools": [{"type": "function", "name": "spawn", "parameters": {}}],
    },
]


def claude_tool_use(model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake_tool",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 12,
        },
    }


def test_claude_function_call_round_trip_through_previous_response_id(
    client: openai.OpenAI, gateway: AsgiServer, fakes: Fakes
) -> None:
    fakes.anthropic.reply(200, claude_tool_use("claude-sonnet-4-5"))
    raw = client.responses.with_raw_response.create(
        model=CLAUDE,
        instructions="You are terse.",
        input="Weather in Paris?",
        tools=[FUNCTION, *HOSTED],
        tool_choice="auto",
        parallel_tool_calls=False,
        max_output_tokens=300,
        temperature=0.2,
        metadata={"user": "ada", "team": "search"},
        reasoning={"summary": "auto"},
        extra_body={"include": ["reasoning.encrypted_content"], "prompt_cache_key": "s1"},
    )
    first = raw.parse()
    body = orjson.loads(raw.http_response.content)
    valid("Response", body)
    assert [item.type for item in first.output] == ["message", "function_call"]
    call = first.output[1]
    assert call.type == "function_call" and call.call_id == "toolu_1" and call.arguments == '{"city":"Paris"}'
    assert body["tools"] == [FUNCTION]  # it says nothing of the tools that were left out
    assert first.usage is not None and usage_cost(first.usage) == cost(CLAUDE, 30, 12)
    sent = fakes.anthropic.received[-1].body
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["system"] in ("You are terse.", [{"type": "text", "text": "You are terse."}])
    assert sent["max_tokens"] == 300 and sent["temperature"] == 0.2
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "include" not in sent and "prompt_cache_key" not in sent

    second = client.responses.create(
        model=CLAUDE,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "toolu_1", "output": "18C, sunny"}],
        tools=[FUNCTION],
    )
    assert second.output_text == "echo: "  # the fake echoes the last user text (here: a tool result)
    messages = fakes.anthropic.received[-1].body["messages"]
    assert messages[0] == {
        "role": "user",
        "content": [{"type": "text", "text": "Weather in Paris?"}],
    } or messages[0]["content"] in ("Weather in Paris?", [{"type": "text", "text": "Weather in Paris?"}])
    assert messages[1]["role"] == "assistant"
    assert {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    } in messages[1]["content"]
    result = messages[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    assert "18C, sunny" in orjson.dumps(result["content"]).decode()
    assert (
        "You are terse." not in orjson.dumps(fakes.anthropic.received[-1].body).decode()
    )  # not carried over

    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["function_call_output"]
    valid(
        "ResponseItemList",
        orjson.loads(httpx.get(f"{gateway.url}/v1/responses/{second.id}/input_items").content),
    )
    assert client.responses.retrieve(first.id).output[1].type == "function_call"


def test_gemini_stream_is_the_full_event_sequence(client: openai.OpenAI, gateway: AsgiServer) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/responses",
        json={"model": GEMINI, "input": "Hello there", "stream": True},
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = sse_events(reply.read())
    valid_stream(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["sequence_number"] == 0
    assert events[6]["text"] == "echo: Hello there"
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "echo: Hello there"
    assert final["usage"]["input_tokens"] == 10 and final["usage"]["output_tokens"] == 4
    assert usage_cost(final["usage"]) == cost(GEMINI, 10, 4)
    kept = client.responses.retrieve(final["id"])
    assert kept.output_text == "echo: Hello there" and kept.status == "completed"
    client.responses.delete(final["id"])
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(final["id"])


def test_the_sdk_streams_a_claude_answer(client: openai.OpenAI) -> None:
    with client.responses.stream(model=CLAUDE, input="stream please") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "echo: stream please" == final.output_text
    assert final.usage is not None and usage_cost(final.usage) == cost(CLAUDE, 11, 5)


def test_store_false_keeps_nothing_and_an_unknown_previous_response_is_refused(client: openai.OpenAI) -> None:
    made = client.responses.create(model=GEMINI, input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=CLAUDE, input="more", previous_response_id=made.id)
    assert refused.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_a_claude_stream_that_breaks_ends_with_response_failed(gateway: AsgiServer, fakes: Fakes) -> None:
    start: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    fakes.anthropic.stream(
        [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}},
            {"type": "message_stop"},
        ],
        cut=True,
    )
    with httpx.stream(
        "POST", gateway.url + "/v1/responses", json={"model": CLAUDE, "input": "x", "stream": True}
    ) as r:
        events = sse_events(r.read())
    valid_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hal"


def test_a_fallback_from_openai_to_claude_is_translated_mid_route(fakes: Fakes, tmp_path: Path) -> None:
    config = tmp_path / "calcifer.yaml"
    config.write_text(f"routing:\n  models:\n    {GPT}:\n      fallbacks: [{CLAUDE}]\n")
    env = {**fakes.env(tmp_path), "CALCIFER_CONFIG": str(config)}
    fakes.openai.script(Script(status=500, body={"error": {"message": "down", "type": "server_error"}}))
    server = AsgiServer(create_app(Settings.from_env(env)))
    try:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        raw = sdk.responses.with_raw_response.create(model=GPT, input="who answers?", tools=[FUNCTION])
    finally:
        server.close()
    answer = raw.parse()
    assert raw.headers["x-calcifer-provider"] == "anthropic"
    assert answer.output_text == "echo: who answers?"
    assert fakes.openai.paths == ["/v1/responses"]  # tried natively first
    assert fakes.anthropic.received[-1].body["tools"][0]["name"] == "get_weather"
    valid("Response", orjson.loads(raw.http_response.content))


def test_a_gzip_body_is_read_and_other_encodings_are_refused(gateway: AsgiServer) -> None:
    import gzip

    body = orjson.dumps({"model": GEMINI, "input": "squeezed", "store": False})
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    reply = httpx.post(gateway.url + "/v1/responses", content=gzip.compress(body), headers=headers)
    assert reply.status_code == 200 and reply.json()["output"][0]["content"][0]["text"] == "echo: squeezed"
    headers["content-encoding"] = "zstd"
    refused = httpx.post(gateway.url + "/v1/responses", content=b"\x28\xb5\x2f\xfd", headers=headers)
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_content_encoding"
    headers["content-encoding"] = "gzip"
    broken = httpx.post(gateway.url + "/v1/responses", content=b"not gzip", headers=headers)
    assert broken.status_code == 400 and "gzip" in broken.json()["error"]["message"]


def test_a_response_claude_made_is_continued_at_openai_in_full(client: openai.OpenAI, fakes: Fakes) -> None:
    first = client.responses.create(model=CLAUDE, input="Remember: blue.", metadata={"user": "ada"})
    assert first.output_text == "echo: Remember: blue."
    client.responses.create(model=GPT, previous_response_id=first.id, input="What colour?")
    sent = fakes.openai.requests[-1]
    assert "previous_response_id" not in sent  # OpenAI did not make it: it gets the conversation itself
    assert [(item["type"], item["role"]) for item in sent["input"]] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert sent["input"][1]["content"][0] == {
        "type": "output_text",
        "text": "echo: Remember: blue.",
        "annotations": [],
        "logprobs": [],
    }
    assert all("id" not in item for item in sent["input"])


def test_a_key_sees_only_the_responses_it_made(fakes: Fakes, tmp_path: Path) -> None:
    master = "mk-test-0123456789abcdefghijklmnop"
    server = AsgiServer(create_app(Settings.from_env({**fakes.env(tmp_path), "CALCIFER_MASTER_KEY": master})))
    try:

        def key(name: str) -> str:
            made = httpx.post(
                server.url + "/admin/keys", json={"name": name}, headers={"Authorization": f"Bearer {master}"}
            )
            return str(made.json()["key"])

        alice, bob = (openai.OpenAI(base_url=server.url + "/v1", api_key=key(n), max_retries=0) for n in "ab")
        boss = openai.OpenAI(base_url=server.url + "/v1", api_key=master, max_retries=0)
        made = alice.responses.create(model=GEMINI, input="mine")
        assert alice.responses.retrieve(made.id).id == made.id
        assert boss.responses.retrieve(made.id).id == made.id
        with pytest.raises(openai.NotFoundError):
            bob.responses.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            bob.responses.delete(made.id)
        with pytest.raises(openai.BadRequestError):
            bob.responses.create(model=GEMINI, input="yours?", previous_response_id=made.id)
        spend = httpx.get(
            server.url + "/v1/spend?group_by=key", headers={"Authorization": f"Bearer {master}"}
        )
    finally:
        server.close()
    assert spend.json()["total"]["requests"] >= 1


class _FullDisk:
    """A response store whose writes fail (a full disk, a lost database)."""

    async def put(self, response: StoredResponse) -> None:
        raise OSError("disk full")

    async def get(self, response_id: str, now: datetime) -> StoredResponse | None:
        return None

    async def chain(self, response_id: str, now: datetime) -> tuple[StoredResponse, ...]:
        return ()

    async def delete(self, response_id: str) -> bool:
        return False


def test_an_answer_the_store_cannot_keep_is_still_sent(
    fakes: Fakes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = AsgiServer(create_app(Settings.from_env(fakes.env(tmp_path)), responses=_FullDisk()))
    try:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        made = sdk.responses.create(model=GEMINI, input="keep me")
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(made.id)
    finally:
        server.close()
    assert made.output_text == "echo: keep me"
    assert f"could not store {made.id} (OSError)" in caplog.text
