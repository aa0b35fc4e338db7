"""When an upstream reports no usage, the gateway counts it itself, prices it and marks it estimated."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import orjson
from tests.fakes.openai_server import FakeOpenAI, Script, completion, stream_chunks
from tests.fakes.threaded import AsgiServer

MESSAGES = [{"role": "user", "content": "hello world"}]


def test_non_streamed_answer_without_usage_is_estimated(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    body = completion("gpt-4o", text="Hello there friend")
    del body["usage"]
    fake_openai.script(Script(body=body))
    answer = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES}
    ).json()
    usage = answer["usage"]
    assert usage["estimated"] is True
    # OpenAI's counting recipe with o200k: 3 per message + "user" (1) + "hello world" (2) + 3 to prime
    # the reply = 9; "Hello there friend" is 3 tokens.
    assert usage["prompt_tokens"] == 9 and usage["completion_tokens"] == 3
    assert Decimal(str(usage["cost"])) == (9 * Decimal("2.5") + 3 * Decimal(10)) / 10**6


def test_stream_without_usage_gets_an_estimated_usage_chunk(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    chunks = stream_chunks("gpt-4o", ["Hello", " there"])[:-1]  # no usage chunk from upstream
    fake_openai.script(Script(chunks=chunks))
    request = {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=request) as response:
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    last = orjson.loads(frames[-2])
    assert last["choices"] == [] and last["usage"]["estimated"] is True
    assert last["usage"]["completion_tokens"] == 2 and last["usage"]["cost"] > 0
